"""ONNX (`model.onnx`) files of the deploy model, and running them with ONNX Runtime.

Conversion is Keras' own `model.export(path, format="onnx")`, which on the TensorFlow backend
traces the model and hands the function to `tf2onnx`, at opset `ONNX_OPSET`. The file's input
is `images` (float32 [N, S, S, 3], N free) and its output `probabilities`.
"""

import warnings

import numpy as np
import tensorflow as tf

from inception_keras.export.formats.deploy_model import INPUT_NAME

# Opset 17 (ONNX 1.12, 2022): run by every ONNX Runtime since 1.13 and by most other runtimes;
# tf2onnx 1.17 converts up to opset 18, and this network gains nothing from 18's changes.
ONNX_OPSET = 17


def convert_onnx(model, path):
    """Writes the deploy `model` to `path` as ONNX at opset ONNX_OPSET."""
    size = model.inputs[0].shape[1]
    with warnings.catch_warnings():
        # Keras' tf2onnx shim probes `np.object`, which numpy 2 answers with a FutureWarning
        warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
        model.export(
            path,
            format="onnx",
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_NAME)],
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    return path


def file_opset(path):
    """The default-domain opset an ONNX file declares."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return next(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))


class OnnxRunner:
    """Runs a `.onnx` classifier with ONNX Runtime's CPU provider: float32 images -> probabilities."""

    def __init__(self, path, num_threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError("expected a classifier with one input and one output")
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or not isinstance(shape[1], int):
            raise ValueError(f"expected an input of square RGB images; it is {shape}")
        self._input_name = inputs[0].name
        self.image_size = int(shape[1])
        self.num_classes = int(outputs[0].shape[-1])
        self.input_dtype = self.output_dtype = "float32"

    def __call__(self, images):
        images = np.asarray(images, np.float32)
        return self._session.run(None, {self._input_name: images})[0].astype(np.float32)
