"""Which installed packages each format converts and runs with, checked before any work.

| format | converter | runtime |
| --- | --- | --- |
| litert, litert_float16, litert_int8 | TensorFlow's `tf.lite.TFLiteConverter` | `ai-edge-litert`'s `Interpreter` |
| onnx | `tf2onnx` (through Keras' `model.export(format="onnx")`), `onnx` | `onnxruntime` |

`ai-edge-litert` publishes no wheels for Linux on ARM (aarch64); there, and only there, LiteRT
files run with TensorFlow's own (deprecated) `tf.lite.Interpreter` instead.
"""

import importlib
import platform

from inception_keras.export.errors import ExportError
from inception_keras.export.formats.names import LITERT, LITERT_FLOAT16, LITERT_INT8, ONNX, \
    parse_formats

INSTALL_HINT = 'pip install -e ".[deploy]"'
LITERT_RUNTIME = ("ai-edge-litert", "ai_edge_litert.interpreter")
# (pip package, module) each format imports, converter first
_PACKAGES = {
    LITERT: (LITERT_RUNTIME,),
    LITERT_FLOAT16: (LITERT_RUNTIME,),
    LITERT_INT8: (LITERT_RUNTIME,),
    ONNX: (("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
}
_NO_LITERT_WHEELS = ("aarch64",)  # platform.machine() values ai-edge-litert has no wheel for


def require_runtimes(formats):
    """Raises ExportError (one line) unless every package `formats` need can be imported.

    The line names the missing pip packages and the extra that installs them all.
    """
    missing = []
    for name in parse_formats(formats):
        for package, module in _PACKAGES.get(name, ()):
            if package not in missing and not _importable(module, package):
                missing.append(package)
    if missing:
        needing = [name for name in parse_formats(formats)
                   if any(p in missing for p, _ in _PACKAGES.get(name, ()))]
        raise ExportError(
            f"export format(s) {', '.join(needing)} need {' and '.join(missing)}, not installed: "
            f"{INSTALL_HINT} (or pip install {' '.join(missing)})."
        )


def _importable(module, package):
    try:
        importlib.import_module(module)
    except ImportError:
        return package == LITERT_RUNTIME[0] and _litert_falls_back()
    return True


def _litert_falls_back():
    return platform.machine().lower() in _NO_LITERT_WHEELS


def litert_interpreter_class():
    """LiteRT's `Interpreter` class (`tf.lite.Interpreter` where ai-edge-litert has no wheel)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        if not _litert_falls_back():
            raise ExportError(
                f"running .tflite files needs ai-edge-litert, not installed: {INSTALL_HINT} "
                "(or pip install ai-edge-litert)."
            ) from None
        import tensorflow as tf

        return tf.lite.Interpreter
    return Interpreter


def package_versions(formats):
    """{pip package: version} of the converters and runtimes `formats` use, for the card."""
    from importlib import metadata

    packages = ["tensorflow"]
    for name in parse_formats(formats):
        packages += [p for p, _ in _PACKAGES.get(name, ()) if p not in packages]
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None  # the LiteRT fallback: tf.lite runs the files
    return versions
