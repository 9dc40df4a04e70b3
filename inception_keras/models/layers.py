"""The building brick shared by every variant: convolution, batch norm, ReLU."""

import dataclasses
from typing import Any, Callable

from keras import layers


@dataclasses.dataclass(frozen=True)
class ConvStyle:
    """How a variant builds its conv-BN-ReLU units and sizes its layers."""

    use_bias: bool
    bn_scale: bool
    bn_epsilon: float
    bn_momentum: float
    kernel_initializer: Callable[[], Any]
    depth_multiplier: float = 1.0
    min_depth: int = 16

    def depth(self, filters):
        """Channel count after the width multiplier (TF-slim's `depth` rule)."""
        if self.depth_multiplier == 1.0:
            return filters
        return max(int(filters * self.depth_multiplier), self.min_depth)


def conv_bn(x, style, filters, kernel_size, name, strides=1, padding="same"):
    """Conv2D -> BatchNormalization -> ReLU, named `{name}_conv`, `{name}_bn`, `{name}_relu`."""
    x = layers.Conv2D(
        style.depth(filters),
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=style.use_bias,
        kernel_initializer=style.kernel_initializer(),
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(
        axis=-1,
        scale=style.bn_scale,
        epsilon=style.bn_epsilon,
        momentum=style.bn_momentum,
        name=f"{name}_bn",
    )(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_relu(x, style, filters, kernel_size, name, strides=1, padding="same"):
    """Conv2D with a bias -> ReLU, named `{name}_conv`, `{name}_relu`: a unit without batch norm."""
    x = layers.Conv2D(
        style.depth(filters),
        kernel_size,
        strides=strides,
        padding=padding,
        kernel_initializer=style.kernel_initializer(),
        name=f"{name}_conv",
    )(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def reduced_pool_size(x, size):
    """Pool/kernel size no larger than the feature map, so small inputs (75x75) still build.

    The same rule as TF-slim's `_reduced_kernel_size_for_small_input`; at 299x299 it is a no-op.
    """
    height, width = x.shape[1], x.shape[2]
    return (min(size, height or size), min(size, width or size))
