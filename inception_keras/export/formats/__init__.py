"""LiteRT and ONNX files of a classifier, checked against the Keras model it comes from.

    from inception_keras.export import formats

    wanted = formats.parse_formats("savedmodel,litert,litert_int8,onnx")
    formats.require_runtimes(wanted)              # before any work: one-line ExportError
    data = formats.dataset_format_data("smoke", None, image_size=96)
    folder, card = formats.export_formats(model, "saved_models", formats=wanted, data=data,
                                          class_names=names, version=3)
    # saved_models/inception_v3_formats/3/{model.tflite, model_int8.tflite, model.onnx,
    #                                      labels.txt, card.json}

`savedmodel` is `export_saved_model`'s; the file formats take the preprocessed float image and
return probabilities. See README "Deploy".
"""

from inception_keras.export.formats.agreement import Agreement, measure_agreement
from inception_keras.export.formats.card import CARD_FILE, LABELS_FILE, read_card
from inception_keras.export.formats.data import (
    DEFAULT_AGREEMENT_EXAMPLES,
    DEFAULT_CALIBRATION_EXAMPLES,
    FormatData,
    array_format_data,
    dataset_format_data,
)
from inception_keras.export.formats.deploy_model import deploy_model
from inception_keras.export.formats.export import (
    FORMATS_SUFFIX, export_all, export_formats, formats_base_dir)
from inception_keras.export.formats.litert import LiteRTRunner
from inception_keras.export.formats.names import (
    DEFAULT_FORMATS,
    FILE_FORMATS,
    FLOAT_MIN_AGREEMENT,
    FORMATS,
    INT8_MIN_AGREEMENT,
    SAVEDMODEL,
    agreement_bounds,
    file_formats,
    needs_data,
    parse_formats,
)
from inception_keras.export.formats.onnx_format import ONNX_OPSET, OnnxRunner
from inception_keras.export.formats.runners import load_runner
from inception_keras.export.formats.runtimes import require_runtimes

__all__ = [
    "Agreement",
    "CARD_FILE",
    "DEFAULT_AGREEMENT_EXAMPLES",
    "DEFAULT_CALIBRATION_EXAMPLES",
    "DEFAULT_FORMATS",
    "FILE_FORMATS",
    "FLOAT_MIN_AGREEMENT",
    "FORMATS",
    "FORMATS_SUFFIX",
    "FormatData",
    "INT8_MIN_AGREEMENT",
    "LABELS_FILE",
    "LiteRTRunner",
    "ONNX_OPSET",
    "OnnxRunner",
    "SAVEDMODEL",
    "agreement_bounds",
    "array_format_data",
    "dataset_format_data",
    "deploy_model",
    "export_all",
    "export_formats",
    "file_formats",
    "formats_base_dir",
    "load_runner",
    "measure_agreement",
    "needs_data",
    "parse_formats",
    "read_card",
    "require_runtimes",
]
