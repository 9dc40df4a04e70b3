"""Inception-v3 for Keras 3: `build_inception_v3`, ImageNet class names and preprocessing."""

from inception_keras.imagenet_classes import decode_predictions, imagenet_class_names, preprocess_input
from inception_keras.model import build_inception_v3, inference_model

__version__ = "0.1.0"
__all__ = [
    "build_inception_v3",
    "decode_predictions",
    "imagenet_class_names",
    "inference_model",
    "preprocess_input",
]
