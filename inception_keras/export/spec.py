"""Checks a model for export and gathers what the signatures need (`ServingSpec`)."""

import keras

from inception_keras.export.class_names import resolve_class_names
from inception_keras.export.errors import ExportError
from inception_keras.export.signatures import ServingSpec
from inception_keras.models.inception_v3 import inference_model


def serving_spec(model, *, class_names=None, top_k=5, image_size=None):
    """The `ServingSpec` of `model` (its aux head dropped), or `ExportError` saying what's wrong."""
    if not isinstance(model, keras.Model):
        raise ExportError(f"model must be a keras.Model; received {type(model).__name__}.")
    model = inference_model(model)
    num_classes = _num_classes(model)
    names = resolve_class_names(class_names, num_classes)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ExportError(f"top_k must be a positive integer; received {top_k!r}.")
    return ServingSpec(
        model=model,
        image_size=_image_size(model, image_size),
        class_names=names,
        top_k=min(top_k, num_classes),  # so the default 5 suits a 3-class model
        apply_softmax=_outputs_logits(model),
    )


def _num_classes(model):
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"model must have one image input and one class output; it has {len(model.inputs)} "
            f"inputs and {len(model.outputs)} outputs. Export a classifier (include_top=True)."
        )
    shape = model.outputs[0].shape
    if len(shape) != 2 or shape[-1] is None:
        raise ExportError(
            f"model output must be class scores of shape (batch, classes); it is {tuple(shape)}. "
            "Export a classifier (include_top=True)."
        )
    return int(shape[-1])


def _image_size(model, image_size):
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ExportError(f"model input must be RGB images (batch, H, W, 3); it is {shape}.")
    height, width = shape[1:3]
    if height != width:
        raise ExportError(f"model input must be square images; it is {height}x{width}.")
    if image_size is None:
        if height is None:
            raise ExportError(
                "the model takes images of any size; pass image_size (e.g. 299) to fix the "
                "size the serving graph resizes to."
            )
        return int(height)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ExportError(f"image_size must be a positive integer; received {image_size!r}.")
    if height is not None and image_size != height:
        raise ExportError(
            f"image_size={image_size} does not match the model's input size {height}; "
            "omit image_size or build the model at that size."
        )
    return image_size


def _outputs_logits(model):
    """True when the output layer is linear (classifier_activation=None): add a softmax."""
    activation = getattr(_output_layer(model), "activation", None)
    return activation is keras.activations.linear


def _output_layer(model):
    """The layer that produces the model's first output (public API: each layer's `output`)."""
    target = model.outputs[0]
    for layer in reversed(model.layers):
        try:
            if layer.output is target:
                return layer
        except (AttributeError, ValueError):  # a layer called several times has no one output
            continue
    return None
