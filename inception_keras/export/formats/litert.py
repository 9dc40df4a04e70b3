"""LiteRT (`.tflite`) files of the deploy model, and running them with LiteRT's interpreter.

Conversion goes the way TensorFlow documents for TF2 models: the deploy model is written as a
SavedModel with one `serving_default` signature (`images` -> `probabilities`) and
`tf.lite.TFLiteConverter.from_saved_model` converts it, with TFLite builtin ops only (no Flex
delegate needed). The files keep that signature, so `get_signature_runner()` works on them.

- `litert`: float32 weights and maths.
- `litert_float16`: weights stored as float16 (half the size), dequantized to float32 at load.
- `litert_int8`: full-integer post-training quantization (int8 weights per channel, int8
  activations calibrated on representative images); input and output stay float32 (quantize
  and dequantize ops at the ends) unless `int8_io=True` makes them int8, for integer-only
  accelerators (the card gives their scale and zero point).
"""

import numpy as np
import keras
import tensorflow as tf

from inception_keras.export.errors import ExportError
from inception_keras.export.formats.deploy_model import INPUT_NAME
from inception_keras.export.formats.names import LITERT, LITERT_FLOAT16, LITERT_INT8
from inception_keras.export.formats.runtimes import litert_interpreter_class

SIGNATURE = "serving_default"


def write_converter_source(model, folder):
    """Writes the deploy `model` as the SavedModel the LiteRT converter reads; returns `folder`."""
    size = model.inputs[0].shape[1]
    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        SIGNATURE,
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(folder, verbose=False)
    return folder


def convert_litert(saved_model_dir, format_name, *, calibration_images=None, int8_io=False):
    """The `.tflite` bytes of `format_name` from `write_converter_source`'s SavedModel.

    `calibration_images` (for `litert_int8`): a callable returning an iterable of float32
    image batches [B, S, S, 3] in [-1, 1], the representative dataset.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, [SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if format_name == LITERT_FLOAT16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif format_name == LITERT_INT8:
        if calibration_images is None:
            raise ExportError("litert_int8 needs calibration images (a representative dataset).")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _one_image_at_a_time(calibration_images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    elif format_name != LITERT:
        raise ValueError(f"not a LiteRT format: {format_name!r}")
    return converter.convert()


def _one_image_at_a_time(calibration_images):
    for batch in calibration_images():
        for image in np.asarray(batch, np.float32):
            yield [image[np.newaxis]]


class LiteRTRunner:
    """Runs a `.tflite` classifier: float32 images [N, S, S, 3] in [-1, 1] -> probabilities.

    Integer input/output (`int8_io`) is quantized and dequantized here with the file's own
    scale and zero point, so every file is called the same way.
    """

    def __init__(self, model, num_threads=None):
        """`model`: the path of a `.tflite` file, or its bytes."""
        interpreter_class = litert_interpreter_class()
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
        self._interpreter = interpreter_class(**source, num_threads=num_threads)
        input_detail = self._interpreter.get_input_details()
        output_detail = self._interpreter.get_output_details()
        if len(input_detail) != 1 or len(output_detail) != 1:
            raise ValueError("expected a classifier with one input and one output")
        self._input, self._output = input_detail[0], output_detail[0]
        shape = [int(d) for d in self._input["shape_signature"]]
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
            raise ValueError(f"expected an input of square RGB images; it is {shape}")
        self.image_size = shape[1]
        self.num_classes = int(self._output["shape_signature"][-1])
        self.input_dtype = np.dtype(self._input["dtype"]).name
        self.output_dtype = np.dtype(self._output["dtype"]).name
        self._batch = None

    @property
    def input_quantization(self):
        """(scale, zero_point) of an integer input, else None."""
        return _quantization(self._input)

    @property
    def output_quantization(self):
        return _quantization(self._output)

    def __call__(self, images):
        images = np.asarray(images, np.float32)
        if images.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], list(images.shape))
            self._interpreter.allocate_tensors()
            self._batch = images.shape[0]
        self._interpreter.set_tensor(self._input["index"], _quantize(images, self._input))
        self._interpreter.invoke()
        return _dequantize(self._interpreter.get_tensor(self._output["index"]), self._output)


def _quantization(detail):
    if np.issubdtype(detail["dtype"], np.floating):
        return None
    scale, zero_point = detail["quantization"]
    return float(scale), int(zero_point)


def _quantize(values, detail):
    quantization = _quantization(detail)
    if quantization is None:
        return values.astype(detail["dtype"])
    scale, zero_point = quantization
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(detail["dtype"])


def _dequantize(values, detail):
    quantization = _quantization(detail)
    if quantization is None:
        return values.astype(np.float32)
    scale, zero_point = quantization
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)

