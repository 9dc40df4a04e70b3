"""SavedModel export for TensorFlow Serving (`python -m inception_keras.export`).

    from inception_keras.export import export_saved_model
    export_saved_model(model, "saved_models")  # -> "saved_models/inception_v3/1"

Signatures: `serving_default` (encoded images -> top-k classes, names, probabilities) and
`predict_images` (float pixels in 0..255 -> all class probabilities).
"""

from inception_keras.export.class_names import read_class_names
from inception_keras.export.errors import ExportError
from inception_keras.export.saved_model import export_saved_model
from inception_keras.export.signatures import (
    IMAGE_BYTES,
    IMAGES,
    PREDICT_IMAGES,
    SERVING_DEFAULT,
)
from inception_keras.export.versions import next_version
from inception_keras.export.warmup import WARMUP_DIR, WARMUP_FILE

__all__ = [
    "ExportError",
    "IMAGES",
    "IMAGE_BYTES",
    "PREDICT_IMAGES",
    "SERVING_DEFAULT",
    "WARMUP_DIR",
    "WARMUP_FILE",
    "export_saved_model",
    "next_version",
    "read_class_names",
]
