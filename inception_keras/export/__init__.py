"""Model export: a TF Serving SavedModel, and LiteRT / ONNX files (`python -m inception_keras.export`).

    from inception_keras.export import export_saved_model, export_formats, dataset_format_data
    export_saved_model(model, "saved_models")  # -> "saved_models/inception_v3/1"
    export_formats(model, "saved_models", version=1, formats="litert,litert_int8,onnx",
                   data=dataset_format_data("smoke", None, 96))
    # -> "saved_models/inception_v3_formats/1" (model.tflite, model_int8.tflite, model.onnx,
    #    labels.txt, card.json)

SavedModel signatures: `serving_default` (encoded images -> top-k classes, names, probabilities)
and `predict_images` (float pixels in 0..255 -> all class probabilities). The file formats
(`inception_keras.export.formats`) take the preprocessed image in [-1, 1] and are checked
against the Keras model before they are published.
"""

from inception_keras.export.class_names import read_class_names
from inception_keras.export.errors import ExportError
from inception_keras.export.formats import (
    FORMATS,
    FormatData,
    dataset_format_data,
    export_formats,
    needs_data,
    parse_formats,
    require_runtimes,
)
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
    "FORMATS",
    "FormatData",
    "IMAGES",
    "IMAGE_BYTES",
    "PREDICT_IMAGES",
    "SERVING_DEFAULT",
    "WARMUP_DIR",
    "WARMUP_FILE",
    "dataset_format_data",
    "export_formats",
    "export_saved_model",
    "needs_data",
    "next_version",
    "parse_formats",
    "read_class_names",
    "require_runtimes",
]
