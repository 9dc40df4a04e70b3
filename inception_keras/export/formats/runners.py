"""Open an exported `.tflite` or `.onnx` file for inference, with the class names beside it."""

import os

from inception_keras.export.errors import ExportError
from inception_keras.export.formats.card import LABELS_FILE
from inception_keras.export.formats.litert import LiteRTRunner
from inception_keras.export.formats.onnx_format import OnnxRunner
from inception_keras.export.formats.runtimes import INSTALL_HINT

FILE_SUFFIXES = (".tflite", ".onnx")


def load_runner(path, num_threads=None):
    """A `LiteRTRunner` (`.tflite`) or `OnnxRunner` (`.onnx`): images in [-1, 1] -> probabilities.

    Raises ExportError when the runtime is not installed, ValueError when the file is not a
    classifier the runtime can load.
    """
    if path.endswith(".onnx"):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ExportError(f"running .onnx files needs onnxruntime, not installed: "
                              f"{INSTALL_HINT} (or pip install onnxruntime).") from None
        return OnnxRunner(path, num_threads=num_threads)
    if path.endswith(".tflite"):
        return LiteRTRunner(path, num_threads=num_threads)
    raise ValueError(f"expected a {' or '.join(FILE_SUFFIXES)} file; received {path!r}")


def read_labels(model_path):
    """The class names in the labels.txt beside `model_path`, or None when there is none."""
    path = os.path.join(os.path.dirname(model_path), LABELS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]
