"""The released Inception-v3 (keras.applications, TF-slim, torchvision).

Layers are created in exactly the order of `keras.applications.InceptionV3`, so files saved from
that model (which address weights by layer order) load into ours.
"""

import dataclasses

from keras import initializers, layers

from inception_keras.choices import RECEPTIVE_FIELDS, STEMS  # noqa: F401 (the builder's choices)
from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS
from inception_keras.models.layers import ConvStyle, conv_bn, conv_relu, reduced_pool_size


def canonical_style(depth_multiplier=1.0, min_depth=16, bn_momentum=None):
    """Keras/TF-slim conventions: no conv bias, BN without scale, epsilon 1e-3, He init."""
    return ConvStyle(
        use_bias=False,
        bn_scale=False,
        bn_epsilon=1e-3,
        bn_momentum=0.99 if bn_momentum is None else bn_momentum,
        kernel_initializer=lambda: initializers.VarianceScaling(
            2.0, mode="fan_in", distribution="truncated_normal"
        ),
        depth_multiplier=depth_multiplier,
        min_depth=min_depth,
    )


def stem(x, s, kind="factorized", receptive_field=299):
    """299x299x3 -> 35x35x192 (and 151x151 or 79x79 -> 35x35 or 36x36 for Table 2's networks).

    `kind="factorized"` is Inception-v3's stem (three 3x3 convolutions); `"7x7"` is the
    Inception-v2 baseline of Table 3, whose first 7x7 convolution the paper's "+ Factorized 7x7"
    row "factorizes ... into a sequence of 3x3 convolutional layers". The paper does not print
    that 7x7 layer; this builds it as BN-Inception's first layer (Ioffe & Szegedy 2015: "conv
    7x7/2", 64 channels), unpadded, so that it ends in the same 147x147x64 map as the three 3x3
    convolutions it stands for and every later layer is the same.

    `receptive_field` is Table 2 (section 9): 299 "stride 2 and maximum pooling after the first
    layer", 151 "stride 1 and maximum pooling after the first layer", 79 "stride 1 and without
    pooling after the first layer". The first convolution's stride becomes 1 (151, 79) and the
    stem's first max pooling goes (79): "after the first layer" read as the first pooling, which
    follows the first (3x3) layers; so 151 pixels reach the same 149x149 map as 299 and the rest
    is the 299 network (the same cost), and 79 reach a 36x36 grid instead of 35x35.
    """
    first_stride = 2 if receptive_field == 299 else 1
    if kind == "7x7":
        x = conv_bn(x, s, 64, 7, "stem_conv7x7", strides=first_stride, padding="valid")
    else:
        x = conv_bn(x, s, 32, 3, "stem_conv1", strides=first_stride, padding="valid")
        x = conv_bn(x, s, 32, 3, "stem_conv2", padding="valid")
        x = conv_bn(x, s, 64, 3, "stem_conv3")
    if receptive_field != 79:
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool1")(x)
    x = conv_bn(x, s, 80, 1, "stem_conv4", padding="valid")
    x = conv_bn(x, s, 192, 3, "stem_conv5", padding="valid")
    return layers.MaxPooling2D(3, strides=2, name="stem_pool2")(x)


def _avg_pool_branch(x, s, filters, name):
    x = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return conv_bn(x, s, filters, 1, f"{name}_conv")


def inception_a(x, s, pool_filters, name):
    """35x35 block (figure 5): 1x1, 5x5, double 3x3 and pooled branches."""
    b1 = conv_bn(x, s, 64, 1, f"{name}_branch1x1")
    b5 = conv_bn(x, s, 48, 1, f"{name}_branch5x5_1")
    b5 = conv_bn(b5, s, 64, 5, f"{name}_branch5x5_2")
    b3 = conv_bn(x, s, 64, 1, f"{name}_branch3x3dbl_1")
    b3 = conv_bn(b3, s, 96, 3, f"{name}_branch3x3dbl_2")
    b3 = conv_bn(b3, s, 96, 3, f"{name}_branch3x3dbl_3")
    bp = _avg_pool_branch(x, s, pool_filters, f"{name}_branch_pool")
    return layers.Concatenate(name=name)([b1, b5, b3, bp])


def reduction_a(x, s, name="mixed3"):
    """35x35 -> 17x17 with parallel strided conv and pooling (figure 10)."""
    b3 = conv_bn(x, s, 384, 3, f"{name}_branch3x3", strides=2, padding="valid")
    bd = conv_bn(x, s, 64, 1, f"{name}_branch3x3dbl_1")
    bd = conv_bn(bd, s, 96, 3, f"{name}_branch3x3dbl_2")
    bd = conv_bn(bd, s, 96, 3, f"{name}_branch3x3dbl_3", strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_branch_pool")(x)
    return layers.Concatenate(name=name)([b3, bd, bp])


def inception_b(x, s, filters_7x7, name):
    """17x17 block (figure 6) with 7x7 convolutions factorised into 1x7 and 7x1."""
    f = filters_7x7
    b1 = conv_bn(x, s, 192, 1, f"{name}_branch1x1")
    b7 = conv_bn(x, s, f, 1, f"{name}_branch7x7_1")
    b7 = conv_bn(b7, s, f, (1, 7), f"{name}_branch7x7_2")
    b7 = conv_bn(b7, s, 192, (7, 1), f"{name}_branch7x7_3")
    bd = conv_bn(x, s, f, 1, f"{name}_branch7x7dbl_1")
    bd = conv_bn(bd, s, f, (7, 1), f"{name}_branch7x7dbl_2")
    bd = conv_bn(bd, s, f, (1, 7), f"{name}_branch7x7dbl_3")
    bd = conv_bn(bd, s, f, (7, 1), f"{name}_branch7x7dbl_4")
    bd = conv_bn(bd, s, 192, (1, 7), f"{name}_branch7x7dbl_5")
    bp = _avg_pool_branch(x, s, 192, f"{name}_branch_pool")
    return layers.Concatenate(name=name)([b1, b7, bd, bp])


def reduction_b(x, s, name="mixed8"):
    """17x17 -> 8x8."""
    b3 = conv_bn(x, s, 192, 1, f"{name}_branch3x3_1")
    b3 = conv_bn(b3, s, 320, 3, f"{name}_branch3x3_2", strides=2, padding="valid")
    b7 = conv_bn(x, s, 192, 1, f"{name}_branch7x7x3_1")
    b7 = conv_bn(b7, s, 192, (1, 7), f"{name}_branch7x7x3_2")
    b7 = conv_bn(b7, s, 192, (7, 1), f"{name}_branch7x7x3_3")
    b7 = conv_bn(b7, s, 192, 3, f"{name}_branch7x7x3_4", strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_branch_pool")(x)
    return layers.Concatenate(name=name)([b3, b7, bp])


def _split_1x3_3x1(x, s, name):
    a = conv_bn(x, s, 384, (1, 3), f"{name}_1x3")
    b = conv_bn(x, s, 384, (3, 1), f"{name}_3x1")
    return a, b


def inception_c(x, s, index):
    """8x8 block (figure 7) with expanded 1x3/3x1 filter banks; index 0 or 1 (mixed9, mixed10)."""
    name = f"mixed{9 + index}"
    b1 = conv_bn(x, s, 320, 1, f"{name}_branch1x1")
    b3 = conv_bn(x, s, 384, 1, f"{name}_branch3x3")
    b3 = layers.Concatenate(name=f"mixed9_{index}")(list(_split_1x3_3x1(b3, s, f"{name}_branch3x3")))
    bd = conv_bn(x, s, 448, 1, f"{name}_branch3x3dbl_1")
    bd = conv_bn(bd, s, 384, 3, f"{name}_branch3x3dbl_2")
    bd = layers.Concatenate(name=f"{name}_branch3x3dbl")(
        list(_split_1x3_3x1(bd, s, f"{name}_branch3x3dbl"))
    )
    bp = _avg_pool_branch(x, s, 192, f"{name}_branch_pool")
    return layers.Concatenate(name=name)([b1, b3, bd, bp])


def aux_head(x, s, classes, activation, head_dtype, batch_norm=True):
    """Auxiliary classifier on the last 17x17 block (BN-auxiliary, section 7 of the paper).

    Its fully connected layer is the 5x5 convolution to 768 channels, which covers the whole
    5x5 pooled map (TF-slim's `AuxLogits/Conv2d_2a_5x5`, padding VALID, like GoogLeNet's
    "fully connected layer with 1024 units"); the classifier after it is the logits layer.
    "BN-auxiliary refers to the version in which the fully connected layer of the auxiliary
    classifier is also batch-normalized, not just the convolutions" (Table 3's caption); `batch_norm=False` (Table 3's rows above "+ BN-auxiliary")
    gives that layer a bias and no batch norm instead (the 1x1 convolution keeps its own, as in
    every convolution of the network).
    """
    x = layers.AveragePooling2D(reduced_pool_size(x, 5), strides=3, name="aux_pool")(x)
    x = conv_bn(x, s, 128, 1, "aux_conv1")
    # The 5x5 conv starts from truncated_normal(0.01), as in TF-slim and torchvision.
    small = dataclasses.replace(s, kernel_initializer=lambda: initializers.TruncatedNormal(
        stddev=0.01))
    unit = conv_bn if batch_norm else conv_relu
    x = unit(x, small, 768, reduced_pool_size(x, 5), "aux_conv2", padding="valid")
    x = layers.Flatten(name="aux_flatten")(x)
    return layers.Dense(
        classes,
        activation=activation,
        kernel_initializer=initializers.TruncatedNormal(stddev=0.001),
        dtype=head_dtype,
        name=AUX_PREDICTIONS,
    )(x)


def classifier(x, classes, activation, dropout_rate, head_dtype):
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    return layers.Dense(
        classes,
        activation=activation,
        kernel_initializer=initializers.VarianceScaling(
            2.0, mode="fan_in", distribution="truncated_normal"
        ),
        dtype=head_dtype,
        name=PREDICTIONS,
    )(x)


def backbone(x, s, aux_fn=None, stem_kind="factorized", receptive_field=299):
    """Stem to mixed10; `aux_fn(mixed7)` builds the auxiliary head at the last 17x17 block."""
    x = stem(x, s, stem_kind, receptive_field)
    for index, pool_filters in enumerate((32, 64, 64)):
        x = inception_a(x, s, pool_filters, f"mixed{index}")
    x = reduction_a(x, s)
    for index, filters_7x7 in enumerate((128, 160, 160, 192)):
        x = inception_b(x, s, filters_7x7, f"mixed{4 + index}")
    aux = aux_fn(x) if aux_fn else None
    x = reduction_b(x, s)
    for index in range(2):
        x = inception_c(x, s, index)
    return x, aux
