"""The "table1" variant: the PyTorch Inception_V3 of the project's original document, exactly.

It differs from the released network: a 3x3 conv to 288 channels ends the stem, 2 x Inception-A
(max-pooled branch), 4 x Inception-B (128, 160, 160, 192), both reductions with max pooling,
2 x Inception-C whose stacked 3x3 and 1x1 convs are shared by their 1x3/3x1 splits, conv biases,
PyTorch BatchNorm settings, and an auxiliary head (avg-pool 5/3, 1x1 conv 1024, global pool,
dropout, linear) right after the first reduction. Layer names follow the document's attributes.
"""

import math

from keras import initializers, layers

from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS
from inception_keras.models.layers import ConvStyle, conv_bn, reduced_pool_size


def table1_style(depth_multiplier=1.0, min_depth=16, bn_momentum=None):
    """nn.Conv2d(bias=True) + nn.BatchNorm2d (eps 1e-5, momentum 0.1 == Keras momentum 0.9).

    Conv weights: `trunc_normal_(std=1e-2, a=-2, b=2)`; its bounds are absolute (+-200 std), so
    the distribution is a plain normal. Biases zero, BN gamma one and beta zero (Keras defaults).
    """
    return ConvStyle(
        use_bias=True,
        bn_scale=True,
        bn_epsilon=1e-5,
        bn_momentum=0.9 if bn_momentum is None else bn_momentum,
        kernel_initializer=lambda: initializers.RandomNormal(stddev=1e-2),
        depth_multiplier=depth_multiplier,
        min_depth=min_depth,
    )


def torch_linear(units, fan_in, activation, head_dtype, name):
    """nn.Linear with PyTorch's default init (the document's init loop skips Linear layers)."""
    bound = 1.0 / math.sqrt(fan_in)
    return layers.Dense(
        units,
        activation=activation,
        kernel_initializer=initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_initializer=initializers.RandomUniform(-bound, bound),
        dtype=head_dtype,
        name=name,
    )


def stem(x, s):
    x = conv_bn(x, s, 32, 3, "conv1a", strides=2, padding="valid")
    x = conv_bn(x, s, 32, 3, "conv1b", padding="valid")
    x = conv_bn(x, s, 64, 3, "conv1c")
    x = layers.MaxPooling2D(3, strides=2, name="maxpool1")(x)
    x = conv_bn(x, s, 80, 3, "conv2a", padding="valid")
    x = conv_bn(x, s, 192, 3, "conv2b", strides=2, padding="valid")
    return conv_bn(x, s, 288, 3, "conv2c")


def _max_pool_branch(x, s, filters, name):
    x = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    return conv_bn(x, s, filters, 1, f"{name}_conv")


def inception_a(x, s, name):
    b5 = conv_bn(x, s, 64, 1, f"{name}_branch_5x5_0")
    b5 = conv_bn(b5, s, 64, 3, f"{name}_branch_5x5_1")
    b5 = conv_bn(b5, s, 96, 3, f"{name}_branch_5x5_2")
    b3 = conv_bn(x, s, 48, 1, f"{name}_branch_3x3_0")
    b3 = conv_bn(b3, s, 64, 3, f"{name}_branch_3x3_1")
    bp = _max_pool_branch(x, s, 64, f"{name}_branch_pool")
    b1 = conv_bn(x, s, 64, 1, f"{name}_branch_1x1")
    return layers.Concatenate(name=name)([b5, b3, bp, b1])


def inception_b(x, s, f, name):
    b2 = conv_bn(x, s, f, 1, f"{name}_branch_2n_0")
    b2 = conv_bn(b2, s, f, (1, 7), f"{name}_branch_2n_1")
    b2 = conv_bn(b2, s, f, (7, 1), f"{name}_branch_2n_2")
    b2 = conv_bn(b2, s, f, (1, 7), f"{name}_branch_2n_3")
    b2 = conv_bn(b2, s, 192, (7, 1), f"{name}_branch_2n_4")
    bn = conv_bn(x, s, f, 1, f"{name}_branch_n_0")
    bn = conv_bn(bn, s, f, (1, 7), f"{name}_branch_n_1")
    bn = conv_bn(bn, s, 192, (7, 1), f"{name}_branch_n_2")
    bp = _max_pool_branch(x, s, 192, f"{name}_branch_pool")
    b1 = conv_bn(x, s, 192, 1, f"{name}_branch_1x1")
    return layers.Concatenate(name=name)([b2, bn, bp, b1])


def grid_reduction(x, s, filters, name):
    f0, f1, f2 = filters
    b5 = conv_bn(x, s, f0, 1, f"{name}_convstride_5x5_0")
    b5 = conv_bn(b5, s, f1, 3, f"{name}_convstride_5x5_1")
    b5 = conv_bn(b5, s, f1, 3, f"{name}_convstride_5x5_2", strides=2, padding="valid")
    b3 = conv_bn(x, s, f0, 1, f"{name}_convstride_3x3_0")
    b3 = conv_bn(b3, s, f2, 3, f"{name}_convstride_3x3_1", strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, strides=2, name=f"{name}_poolstride")(x)
    return layers.Concatenate(name=name)([b5, b3, bp])


def inception_c(x, s, name):
    # The document wraps one stem module in two nn.Sequential splits: one set of weights,
    # evaluated once here (the PyTorch forward computes it twice, with the same result).
    b5 = conv_bn(x, s, 448, 1, f"{name}_branch_5x5_0")
    b5 = conv_bn(b5, s, 384, 3, f"{name}_branch_5x5_1")
    b5_1 = conv_bn(b5, s, 384, (1, 3), f"{name}_branch_5x5_1_split")
    b5_2 = conv_bn(b5, s, 384, (3, 1), f"{name}_branch_5x5_2_split")
    b3 = conv_bn(x, s, 384, 1, f"{name}_branch_3x3")
    b3_1 = conv_bn(b3, s, 384, (1, 3), f"{name}_branch_3x3_1_split")
    b3_2 = conv_bn(b3, s, 384, (3, 1), f"{name}_branch_3x3_2_split")
    bp = _max_pool_branch(x, s, 192, f"{name}_branch_pool")
    b1 = conv_bn(x, s, 320, 1, f"{name}_branch_1x1")
    return layers.Concatenate(name=name)([b5_1, b5_2, b3_1, b3_2, bp, b1])


def aux_head(x, s, classes, activation, dropout_rate, head_dtype):
    x = layers.AveragePooling2D(reduced_pool_size(x, 5), strides=3, name="aux_pool")(x)
    x = conv_bn(x, s, 1024, 1, "aux_conv")
    x = layers.GlobalAveragePooling2D(name="aux_gap")(x)
    x = layers.Dropout(dropout_rate, name="aux_dropout")(x)
    return torch_linear(classes, x.shape[-1], activation, head_dtype, AUX_PREDICTIONS)(x)


def classifier(x, classes, activation, dropout_rate, head_dtype):
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    return torch_linear(classes, x.shape[-1], activation, head_dtype, PREDICTIONS)(x)


def backbone(x, s, aux_fn=None):
    """Stem to inceptionC_2; `aux_fn(x)` builds the auxiliary head after the first reduction."""
    x = stem(x, s)
    for index in (1, 2):
        x = inception_a(x, s, f"inceptionA_{index}")
    x = grid_reduction(x, s, (64, 96, 384), "gridreducA")
    aux = aux_fn(x) if aux_fn else None
    for index, filters in enumerate((128, 160, 160, 192), start=1):
        x = inception_b(x, s, filters, f"inceptionB_{index}")
    x = grid_reduction(x, s, (192, 192, 320), "gridreducB")
    for index in (1, 2):
        x = inception_c(x, s, f"inceptionC_{index}")
    return x, aux
