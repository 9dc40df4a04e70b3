"""`assets.extra/tf_serving_warmup_requests`: PredictionLog records TF Serving replays at load.

Records are TF Serving's own protos (`tensorflow_serving.apis`, from tensorflow-serving-api).
"""

import os

import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from inception_keras.data.preprocessing import decode_rgb
from inception_keras.export.errors import ExportError
from inception_keras.export.signatures import IMAGE_BYTES, IMAGES, PREDICT_IMAGES, SERVING_DEFAULT

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving's limit


def write_warmup_file(saved_model_dir, model_name, image_size, warmup_images=None):
    """Writes the warm-up records: each image alone, all images in one batch, and pixels."""
    images = default_warmup_images(image_size) if warmup_images is None else warmup_images
    if not 1 <= len(images) <= MAX_RECORDS - 2:
        raise ExportError(f"warmup_images must hold 1 to {MAX_RECORDS - 2} encoded images.")
    pixels = [_decoded(image, index) for index, image in enumerate(images)]  # checks them all
    requests = [(SERVING_DEFAULT, {IMAGE_BYTES: np.array([image], dtype=object)}) for image in images]
    requests.append((SERVING_DEFAULT, {IMAGE_BYTES: np.array(images, dtype=object)}))
    resized = tf.image.resize(pixels[0], [image_size, image_size])[tf.newaxis]
    requests.append((PREDICT_IMAGES, {IMAGES: resized.numpy().astype(np.float32)}))
    path = os.path.join(saved_model_dir, WARMUP_DIR, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in requests:
            writer.write(predict_log_record(model_name, signature_name, inputs))
    return path


def default_warmup_images(image_size):
    """Synthetic encoded images of the kinds clients send: colour JPEG, grey JPEG, PNG."""
    height, width = image_size + 21, image_size + 43  # not square, not the model size
    down = tf.linspace(0.0, 255.0, height)[:, tf.newaxis] * tf.ones([1, width])
    across = tf.ones([height, 1]) * tf.linspace(255.0, 0.0, width)[tf.newaxis, :]
    colour = tf.cast(tf.stack([down, across, (down + across) / 2], axis=-1), tf.uint8)
    grey = tf.image.rgb_to_grayscale(colour)
    return [
        tf.io.encode_jpeg(colour).numpy(),
        tf.io.encode_jpeg(grey).numpy(),
        tf.io.encode_png(colour).numpy(),
    ]


def predict_log_record(model_name, signature_name, inputs):
    """A serialized `PredictionLog` holding the `PredictRequest` of `inputs` (name -> array)."""
    tensors = {key: tf.make_tensor_proto(value) for key, value in inputs.items()}
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
    )
    for key, tensor in tensors.items():
        request.inputs[key].CopyFrom(tensor)
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    return log.SerializeToString()


def _decoded(image, index):
    if not isinstance(image, bytes):
        raise ExportError(
            f"warmup_images[{index}] must be encoded image bytes; received {type(image).__name__}."
        )
    try:
        return decode_rgb(image)
    except tf.errors.InvalidArgumentError:
        raise ExportError(
            f"warmup_images[{index}] is not a JPEG, PNG, GIF or BMP image; TF Serving would fail "
            "to load a model whose warm-up requests fail."
        ) from None
