"""The optimizer of a TrainConfig, with every constant of the recipe passed explicitly.

Keras 3's `RMSprop` defaults (rho 0.9, momentum 0.0, epsilon 1e-7) are not the Inception recipes'
(0.9, 0.9, 1.0), so every one is passed. Keras' update is `v = rho v + (1-rho) g^2; m = mu m +
lr g / sqrt(v + eps); w -= m`, the same as TF-1's `tf.compat.v1.train.RMSPropOptimizer` (epsilon
inside the square root, momentum on the scaled step) except for one thing: TF-1 (and timm's
RMSpropTF) starts the mean square `v` at 1, Keras at 0. `RMSprop` below makes the start a
parameter (`config.rmsprop_initial_mean_square`: 1.0 is TF-1, 0.0 is Keras). With epsilon 1.0 the
difference is small but lasts: `v` carries `rho^t` of its start, so TF-1 damps the first ~20
steps by up to 1/sqrt(2).
"""

import keras

_MEAN_SQUARE_SLOT = "velocity"  # the name Keras' RMSprop gives its mean-square slot


@keras.saving.register_keras_serializable(package="inception_keras")
class RMSprop(keras.optimizers.RMSprop):
    """Keras' RMSprop whose mean square starts at `initial_mean_square` (TF-1: 1.0) instead of 0.

    Everything else (update, momentum, centering, distribution, loss scaling, checkpoints) is
    Keras' own: only the initializer of the mean-square slot changes, through the public
    `add_optimizer_variables` that `keras.optimizers.RMSprop.build` creates its slots with.
    """

    def __init__(self, *args, initial_mean_square=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial_mean_square = float(initial_mean_square)

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        if name == _MEAN_SQUARE_SLOT:
            initializer = keras.initializers.Constant(self.initial_mean_square)
        return super().add_optimizer_variables(trainable_variables, name, initializer)

    def get_config(self):
        return {**super().get_config(), "initial_mean_square": self.initial_mean_square}


def make_optimizer(config, learning_rate):
    """A built-to-spec Keras optimizer (call inside the strategy scope).

    Clipping, loss scaling, decoupled weight decay and the weight average are not the
    optimizer's: the trainer's step clips the all-reduced gradient, scales the loss and keeps the
    EMA itself (`inception_keras.training.step.steps`), and `updates.LocalUpdate` applies the decay
    (AdamW = this Adam + `decoupled_weight_decay`), so the optimizer only supplies its update
    math and slots.
    """
    common = dict(learning_rate=learning_rate)
    if config.optimizer == "rmsprop":
        optimizer = RMSprop(
            rho=config.rmsprop_rho, momentum=config.momentum, epsilon=config.epsilon,
            centered=False, initial_mean_square=config.rmsprop_initial_mean_square, **common)
    elif config.optimizer in ("adam", "adamw"):  # adamw's decoupled decay: updates.LocalUpdate
        optimizer = keras.optimizers.Adam(epsilon=config.epsilon, **common)
    elif config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(momentum=config.momentum, **common)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    return optimizer
