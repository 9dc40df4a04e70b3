"""The export format names, the same in every entry point, and what each one writes.

`savedmodel` is the TF Serving SavedModel (`export_saved_model`, JPEG bytes in); the others are
single files of the float32 network, which take the preprocessed square image (float32 pixels
in [-1, 1]) and return class probabilities.
"""

import dataclasses

from inception_keras.choices import EXPORT_FORMATS
from inception_keras.export.errors import ExportError

FORMATS = EXPORT_FORMATS  # defined once, TF-free, for configs/ too
SAVEDMODEL, LITERT, LITERT_FLOAT16, LITERT_INT8, ONNX = FORMATS
DEFAULT_FORMATS = (SAVEDMODEL,)


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """A format written as one file into `<export_dir>/<model_name>_formats/<version>/`."""

    name: str
    file_name: str
    weights: str  # what the file stores the weights as, in words
    min_agreement: float  # the default least top-1 agreement it may be published at

    @property
    def bound_key(self):
        """The option that sets its bound: `min_agreement_int8` or `min_agreement_float`."""
        return "min_agreement_int8" if self.name == LITERT_INT8 else "min_agreement_float"


# defaults of the bounds (config keys and export flags `min_agreement_float`/`_int8`)
FLOAT_MIN_AGREEMENT = 0.995
INT8_MIN_AGREEMENT = 0.97
FILE_FORMATS = {
    LITERT: FileFormat(LITERT, "model.tflite", "float32", FLOAT_MIN_AGREEMENT),
    LITERT_FLOAT16: FileFormat(LITERT_FLOAT16, "model_float16.tflite", "float16", FLOAT_MIN_AGREEMENT),
    LITERT_INT8: FileFormat(LITERT_INT8, "model_int8.tflite", "int8", INT8_MIN_AGREEMENT),
    ONNX: FileFormat(ONNX, "model.onnx", "float32", FLOAT_MIN_AGREEMENT),
}


def parse_formats(formats):
    """'savedmodel,litert' or a sequence of names -> a tuple of known names in FORMATS order.

    Raises ExportError naming the valid names when one is unknown or none is given.
    """
    if isinstance(formats, str):
        names = [name.strip() for name in formats.split(",")]
    elif isinstance(formats, (list, tuple)) and all(isinstance(n, str) for n in formats):
        names = [name.strip() for name in formats]
    else:
        raise ExportError(
            f"formats must be comma-separated names or a list of them, from {', '.join(FORMATS)}; "
            f"received {formats!r}."
        )
    names = [name for name in names if name]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        what = f"unknown export format(s) {', '.join(map(repr, unknown))}" if unknown else \
            "no export format given"
        raise ExportError(f"{what}; choose from {', '.join(FORMATS)} (comma-separated).")
    return tuple(name for name in FORMATS if name in names)


def file_formats(formats):
    """The `FileFormat`s among `formats` (names), in FORMATS order: all but `savedmodel`."""
    return tuple(FILE_FORMATS[name] for name in parse_formats(formats) if name != SAVEDMODEL)


def needs_data(formats):
    """True when a format among `formats` needs images: every file format is scored for its
    agreement with the Keras model on validation images, and `litert_int8` is calibrated on
    training images."""
    return bool(file_formats(formats))


def agreement_bounds(min_agreement_float=FLOAT_MIN_AGREEMENT,
                     min_agreement_int8=INT8_MIN_AGREEMENT):
    """{bound_key: value}, each checked to be a share in [0, 1] (ExportError names the flag)."""
    bounds = {"min_agreement_float": min_agreement_float, "min_agreement_int8": min_agreement_int8}
    for key, value in bounds.items():
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ExportError(f"--{key} must be a share in [0, 1] (e.g. 0.97), got {value!r}.")
    return {key: float(value) for key, value in bounds.items()}
