"""Inception-v3 for Keras 3: `build_inception_v3`, ImageNet class names and preprocessing.

The public names below are imported on first use, so `import inception_keras.<module>` of a
module without TensorFlow (`inception_keras.choices`, which `configs/` imports) stays TF-free.
"""

import importlib

__version__ = "0.1.0"  # the package version: pyproject.toml reads it from here

_PUBLIC = {
    "build_inception_v3": "inception_keras.models.inception_v3",
    "decode_predictions": "inception_keras.imagenet_classes",
    "imagenet_class_names": "inception_keras.imagenet_classes",
    "inference_model": "inception_keras.models.inception_v3",
    "preprocess_input": "inception_keras.imagenet_classes",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
