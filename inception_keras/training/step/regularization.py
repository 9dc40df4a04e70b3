"""Weight decay on convolution and dense kernels only (no biases, no batch-norm parameters).

TF-slim's `l2_regularizer(wd)` adds `wd * sum(w^2) / 2` (tf.nn.l2_loss); Keras' `L2(l)` adds
`l * sum(w^2)`, so the kernels get `L2(wd / 2)`. Keras adds each variable's `.regularizer` to the
training loss (`model.losses`), scaled for distribution like the rest of the loss.
"""

import keras

from inception_keras.models.inception_v3 import all_layers

KERNEL_LAYERS = (keras.layers.Conv2D, keras.layers.Dense)


def add_kernel_weight_decay(model, weight_decay):
    """Attaches L2(weight_decay / 2) to every Conv2D/Dense kernel; returns how many kernels."""
    if not weight_decay:
        return 0
    count = 0
    for layer in all_layers(model):
        if isinstance(layer, KERNEL_LAYERS):
            layer.kernel.regularizer = keras.regularizers.L2(weight_decay / 2.0)
            count += 1
    return count
