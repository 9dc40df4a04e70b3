"""What a network costs: parameters and multiply-adds per image (Keras layers only).

    multiply_adds(build_inception_v3(include_aux=False))   # ~5.7e9 at 299 x 299

Multiply-adds are the paper's unit (Szegedy et al. count ~5 billion for Inception-v3): every
`Conv2D` output element costs kernel height x width x input channels / groups of them, every
`Dense` output element its input size; pooling, batch norm and activations are not counted
(they add no multiplications by weights). The auxiliary head, which runs in training only, is
left out when the model is given through `inference_model`.
"""

import math

import keras

from inception_keras.models.inception_v3 import all_layers


def _elements(shape):
    return math.prod(int(d) for d in shape[1:])


def multiply_adds(model):
    """Multiply-adds of one image through `model`'s Conv2D and Dense layers (static shapes)."""
    total = 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            height, width = layer.kernel_size
            channels_in = int(layer.input.shape[-1]) // layer.groups
            total += _elements(layer.output.shape) * height * width * channels_in
        elif isinstance(layer, keras.layers.Dense):
            total += _elements(layer.output.shape) * int(layer.input.shape[-1])
    return total
