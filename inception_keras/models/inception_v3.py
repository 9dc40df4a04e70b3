"""`build_inception_v3`: Inception-v3 as a Keras functional model, keras.applications style."""

import os

import keras
from keras import layers

from inception_keras.models import weights as weights_lib
from inception_keras.imagenet_classes import IMAGENET_NUM_CLASSES
from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS, canonical, table1

MIN_SIZE = 75
DEFAULT_SIZE = 299
VARIANTS = ("canonical", "table1")
DEFAULT_DROPOUT = {"canonical": 0.2, "table1": 0.5}


def build_inception_v3(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=IMAGENET_NUM_CLASSES,
    classifier_activation="softmax",
    include_aux=True,
    dropout_rate=None,
    variant="canonical",
    name="inception_v3",
    depth_multiplier=1.0,
    min_depth=16,
    batch_norm_momentum=None,
    stem="factorized",
    aux_batch_norm=True,
    receptive_field=DEFAULT_SIZE,
):
    """Instantiates Inception-v3 ("Rethinking the Inception Architecture", Szegedy et al. 2015).

    Args:
        include_top: whether to end in the classifier (global pool, dropout, dense).
        weights: `None` (random initialisation), `"imagenet"` (Keras' published file, from the
            Keras cache or downloaded) or the path of a weights file: Keras' Keras-2 `.h5` file,
            a `.weights.h5` saved from `keras.applications.InceptionV3`, or one saved from a model
            built here with the same arguments.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: `(height, width, channels)`, channels last, each side at least 75.
            Defaults to (299, 299, 3) with the top and (None, None, 3) without.
        pooling: feature pooling when `include_top=False`: `None` (8x8x2048 map at 299), `"avg"`
            or `"max"`.
        classes: number of classes of the classifier(s).
        classifier_activation: activation of the classifier(s); `None` returns logits.
        include_aux: with `include_top=True`, also build the auxiliary classifier; the model then
            returns `{"predictions": ..., "aux_predictions": ...}` (use `inference_model` for the
            single-output model). Ignored without the top.
        dropout_rate: dropout before the classifier(s); `None` means the variant's own
            (0.2 canonical, 0.5 table1).
        variant: `"canonical"` (the released network, as keras.applications) or `"table1"` (the
            PyTorch model of the project's original document).
        name: model name.
        depth_multiplier: scales every conv's channel count (TF-slim's rule, floored at
            `min_depth`); 1.0 is the published network, smaller values make quick test models.
        min_depth: smallest channel count when `depth_multiplier < 1`.
        batch_norm_momentum: moving-average momentum of every BatchNormalization layer;
            `None` means the variant's own (0.99 canonical, 0.9 table1).
        stem: `"factorized"` (Inception-v3's three 3x3 convolutions) or `"7x7"` (the
            Inception-v2 baseline of the paper's Table 3: one 7x7/2 convolution to 64 channels
            in their place). Canonical variant only.
        aux_batch_norm: batch norm on the auxiliary head's fully connected layer (its 5x5
            convolution to 768 channels): Table 3's "BN-auxiliary"; `False` gives that layer a
            bias instead. Canonical variant only.
        receptive_field: 299, 151 or 79, the networks of the paper's Table 2: first convolution
            with stride 2 (299) or 1 (151, 79), and the stem's first max pooling dropped (79).
            The default input shape with the top is `receptive_field` square. Canonical only.

    Switches that change no weight's shape (`receptive_field`) cannot be told apart in a weights
    file: a file saved at one resolution loads into the others; `stem` and `aux_batch_norm`
    change the weighted layers, and a file of the other setting is refused.

    Returns:
        A `keras.Model`.
    """
    _check_arguments(**locals())
    if dropout_rate is None:
        dropout_rate = DEFAULT_DROPOUT[variant]
    shape = _resolve_input_shape(input_shape, input_tensor, include_top, include_aux,
                                 receptive_field)
    graph_kwargs = dict(
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout_rate=dropout_rate,
        variant=variant,
        depth_multiplier=depth_multiplier,
        min_depth=min_depth,
        batch_norm_momentum=batch_norm_momentum,
        stem=stem,
        aux_batch_norm=aux_batch_norm,
        receptive_field=receptive_field,
    )
    inputs, image = _input_layer(input_tensor, shape)
    outputs = _graph(image, include_top, include_aux and include_top, **graph_kwargs)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        _load_pretrained(model, weights, include_top, shape, graph_kwargs)
    return model


def all_layers(model):
    """Every layer of `model`, those of nested models included (in their order)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)
        else:
            yield layer


def inference_model(model):
    """The single-output model (main classifier) of a two-output model, sharing its weights.

    A model without an auxiliary output is returned as it is.
    """
    if not any(layer.name == AUX_PREDICTIONS for layer in model.layers):
        return model
    return keras.Model(model.inputs, model.get_layer(PREDICTIONS).output, name=model.name)


def _graph(image, include_top, include_aux, *, pooling, classes, classifier_activation,
           dropout_rate, variant, depth_multiplier, min_depth, batch_norm_momentum, stem,
           aux_batch_norm, receptive_field):
    module = canonical if variant == "canonical" else table1
    style_fn = canonical.canonical_style if variant == "canonical" else table1.table1_style
    style = style_fn(depth_multiplier, min_depth, batch_norm_momentum)
    head_dtype = _head_dtype()
    aux_fn, switches = None, {}
    if variant == "canonical":
        switches = dict(stem_kind=stem, receptive_field=receptive_field)
    if include_aux:
        aux_args = (classes, classifier_activation)
        aux_options = {"batch_norm": aux_batch_norm} if variant == "canonical" else {}
        if variant == "table1":
            aux_args += (dropout_rate,)
        aux_fn = lambda x: module.aux_head(x, style, *aux_args, head_dtype,  # noqa: E731
                                           **aux_options)
    x, aux = module.backbone(image, style, aux_fn, **switches)
    if include_top:
        x = module.classifier(x, classes, classifier_activation, dropout_rate, head_dtype)
        return {PREDICTIONS: x, AUX_PREDICTIONS: aux} if include_aux else x
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def _head_dtype():
    """Classifiers compute in float32 under a mixed policy, so probabilities and losses are exact."""
    policy = keras.config.dtype_policy()
    return "float32" if policy.compute_dtype != policy.variable_dtype else None


def _input_layer(input_tensor, shape):
    if input_tensor is None:
        image = layers.Input(shape=shape, name="image")
        return image, image
    if not keras.backend.is_keras_tensor(input_tensor):
        image = layers.Input(tensor=input_tensor, shape=shape, name="image")
        return image, image
    sources = keras.utils.get_source_inputs(input_tensor)
    return (sources[0] if len(sources) == 1 else sources), input_tensor


def _resolve_input_shape(input_shape, input_tensor, include_top, include_aux, receptive_field):
    if input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        return (receptive_field, receptive_field, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels), channels last; "
            f"received input_shape={input_shape}."
        )
    height, width, channels = input_shape
    if any(side is not None and side < MIN_SIZE for side in (height, width)):
        raise ValueError(
            f"`input_shape` must be at least {MIN_SIZE}x{MIN_SIZE} (the network reduces it 32 "
            f"times); received input_shape={input_shape}. Resize your images first."
        )
    if include_top and include_aux and None in (height, width):
        raise ValueError(
            "`include_top=True` with `include_aux=True` needs a static `input_shape` (the "
            f"auxiliary head is sized to its 17x17 grid); received input_shape={input_shape}. "
            "Pass e.g. input_shape=(299, 299, 3), or include_aux=False."
        )
    return input_shape


def _check_arguments(*, include_top, weights, input_shape, input_tensor, pooling, classes,
                     classifier_activation, variant, depth_multiplier, stem, aux_batch_norm,
                     receptive_field, **_):
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}; received variant={variant!r}.")
    _check_switches(variant, stem, aux_batch_norm, receptive_field)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'; received pooling={pooling!r}.")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"`classes` must be a positive integer; received classes={classes!r}.")
    if depth_multiplier <= 0:
        raise ValueError(f"`depth_multiplier` must be > 0; received {depth_multiplier}.")
    if weights is None:
        return
    if weights != "imagenet" and not (isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)):
        raise ValueError(
            "`weights` must be None (random initialisation), 'imagenet', or the path of a weights "
            f"file; received weights={weights!r}, which is not an existing file."
        )
    if weights == "imagenet":
        if variant != "canonical" or depth_multiplier != 1.0 or stem != "factorized":
            raise ValueError(
                "weights='imagenet' exist only for variant='canonical' with depth_multiplier=1.0 "
                f"and stem='factorized'; received variant={variant!r}, "
                f"depth_multiplier={depth_multiplier}, stem={stem!r}."
            )
        if include_top and classes != IMAGENET_NUM_CLASSES:
            raise ValueError(
                f"weights='imagenet' with include_top=True has {IMAGENET_NUM_CLASSES} classes; "
                f"received classes={classes}. Use classes={IMAGENET_NUM_CLASSES}, or "
                "include_top=False with your own head."
            )
        if include_top and classifier_activation not in (None, "softmax"):
            raise ValueError(
                "With weights='imagenet', `classifier_activation` must be None or 'softmax'; "
                f"received {classifier_activation!r}."
            )
    shape = tuple(input_tensor.shape[1:]) if input_tensor is not None else input_shape
    if shape is not None and shape[-1] != 3:
        raise ValueError(f"Pretrained `weights` need 3 input channels; received input_shape={shape}.")


def _check_switches(variant, stem, aux_batch_norm, receptive_field):
    if stem not in canonical.STEMS:
        raise ValueError(f"`stem` must be one of {canonical.STEMS}; received stem={stem!r}.")
    if not isinstance(aux_batch_norm, bool):
        raise ValueError("`aux_batch_norm` must be True or False; received "
                         f"aux_batch_norm={aux_batch_norm!r}.")
    if receptive_field not in canonical.RECEPTIVE_FIELDS:
        raise ValueError(f"`receptive_field` must be one of {canonical.RECEPTIVE_FIELDS} (the "
                         f"paper's Table 2); received receptive_field={receptive_field!r}.")
    changed = (stem != "factorized", not aux_batch_norm, receptive_field != DEFAULT_SIZE)
    if variant != "canonical" and any(changed):
        raise ValueError("`stem`, `aux_batch_norm` and `receptive_field` switch the canonical "
                         f"network's layers; variant={variant!r} has its own: leave them at "
                         "their defaults.")


def _load_pretrained(model, weights, include_top, shape, graph_kwargs):
    if weights == "imagenet":
        weights = weights_lib.imagenet_weights_path(include_top)
    def twin_factory(twin_top):
        image = layers.Input(shape=(None, None, shape[-1]))
        kwargs = dict(graph_kwargs, pooling=None)
        if not include_top:
            kwargs["classes"] = IMAGENET_NUM_CLASSES
        return keras.Model(image, _graph(image, twin_top, False, **kwargs))

    canonical_variant = graph_kwargs["variant"] == "canonical"
    weights_lib.load_weights(model, os.fspath(weights), twin_factory if canonical_variant else None)
