"""The two serving signatures, built explicitly with `keras.export.ExportArchive`.

What Keras' own `model.export` writes depends on its release: Keras 3.15 names a single output
`output_0`, and earlier Keras 3 releases also renamed inputs and failed on multi-output models
(keras#19458, #19771, #21258). So each signature here is a function with named inputs and a
dict of named outputs. Both take and return float32 whatever the model's dtype policy, and run
the model with `training=False` (BatchNorm moving statistics, no Dropout).

Both call one `tf.function` of the model with a fixed input signature, so the network is traced
once and stored once in the SavedModel: each signature adds only its pre- and post-processing.
"""

import dataclasses

import keras
import tensorflow as tf

from inception_keras.data.preprocessing import preprocess_for_eval, scale_to_unit_range

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGES = "predict_images"
IMAGE_BYTES = "image_bytes"
IMAGES = "images"


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """A single-output classifier and what its signatures need to know about it."""

    model: keras.Model
    image_size: int
    class_names: tuple
    top_k: int
    apply_softmax: bool  # the model outputs logits


def build_archive(spec):
    """An `ExportArchive` with `serving_default` (encoded images) and `predict_images` (pixels)."""
    probabilities_fn = _probabilities_fn(spec)
    # No `archive.track(model)`: it would store every weight a second time (as Keras
    # variables beside the tf.Variables the endpoints capture), doubling the export's size.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        SERVING_DEFAULT,
        _classify_bytes_fn(spec, probabilities_fn),
        input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)],
    )
    size = spec.image_size
    archive.add_endpoint(
        PREDICT_IMAGES,
        _predict_pixels_fn(probabilities_fn),
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name=IMAGES)],
    )
    return archive


def _classify_bytes_fn(spec, probabilities_fn):
    class_names = tf.constant(spec.class_names, dtype=tf.string)
    decoded = tf.TensorSpec([spec.image_size, spec.image_size, 3], tf.float32)

    def serving_default(image_bytes):
        images = tf.map_fn(
            lambda one: preprocess_for_eval(one, spec.image_size),
            image_bytes,
            fn_output_signature=decoded,
        )
        top = tf.math.top_k(probabilities_fn(images), k=spec.top_k)
        return {
            "classes": tf.cast(top.indices, tf.int64),
            "class_names": tf.gather(class_names, top.indices),
            "probabilities": top.values,
        }

    return serving_default


def _predict_pixels_fn(probabilities_fn):
    def predict_images(images):
        return {"probabilities": probabilities_fn(scale_to_unit_range(images))}

    return predict_images


def _probabilities_fn(spec):
    """Float32 pixels in [-1, 1] -> float32 class probabilities, traced once for both endpoints."""
    input_dtype = spec.model.inputs[0].dtype
    size = spec.image_size

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    def probabilities(images):
        outputs = spec.model(tf.cast(images, input_dtype), training=False)
        outputs = tf.cast(outputs, tf.float32)
        return tf.nn.softmax(outputs) if spec.apply_softmax else outputs

    return probabilities.get_concrete_function()  # called as is: never traced again
