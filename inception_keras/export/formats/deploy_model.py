"""The network every file format is converted from: float32, one input, class probabilities.

`deploy_model(model)` takes the model the SavedModel is exported from (the two-output training
model or a single-output one, under any dtype policy) and returns a Keras model that computes
the same function in float32: input `images` (float32 [N, S, S, 3], preprocessed to [-1, 1]),
output `{"probabilities": float32 [N, classes]}` (a softmax is added when the model ends in
logits). Its weights are the given model's current ones (swap EMA weights in first).
"""

import keras
import tensorflow as tf

from inception_keras.export.spec import serving_spec

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


def deploy_model(model, *, image_size=None, class_names=None):
    """(float32 `keras.Model` images -> {"probabilities"}, `ServingSpec` of `model`).

    The spec holds the checked image size and class names (default as `export_saved_model`).
    Raises ExportError when `model` is not a single-image classifier, as `export_saved_model`.
    """
    # drops the aux head, checks the shapes and names
    spec = serving_spec(model, class_names=class_names, image_size=image_size)
    network = _float32_copy(spec.model)
    size = spec.image_size
    images = keras.Input((size, size, 3), dtype="float32", name=INPUT_NAME)
    outputs = network(images, training=False)
    if spec.apply_softmax:
        outputs = keras.layers.Softmax(dtype="float32", name="softmax")(outputs)
    return keras.Model(images, {OUTPUT_NAME: outputs}, name=f"{network.name}_deploy"), spec


def probabilities_function(model):
    """A traced `tf.function` of the deploy model: images -> {"probabilities": ...}."""
    size = model.inputs[0].shape[1]

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32,
                                                 name=INPUT_NAME)])
    def probabilities(images):
        return model(images, training=False)

    return probabilities.get_concrete_function()


def _float32_copy(model):
    """`model` itself when every layer computes in float32, else a float32 clone of it.

    The clone's BatchNormalization layers are Keras' own (a subclass such as the trainer's
    fused one computes the same inference), so the converters see only standard ops.
    """
    if all(_is_plain_float32(layer) for layer in _all_layers(model)):
        return model

    def float32_layer(layer):
        config = {**layer.get_config(), "dtype": "float32"}
        if isinstance(layer, keras.layers.BatchNormalization):
            return keras.layers.BatchNormalization.from_config(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=float32_layer, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _is_plain_float32(layer):
    policy = getattr(layer, "dtype_policy", None)
    if getattr(policy, "name", "float32") != "float32":
        return False
    is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
    return not is_batch_norm or type(layer) is keras.layers.BatchNormalization


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
