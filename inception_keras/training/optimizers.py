"""The optimizer of a TrainConfig, with all of the paper's RMSprop settings set explicitly.

Keras 3's `RMSprop` defaults (rho 0.9, momentum 0.0, epsilon 1e-7) are not the paper's (0.9, 0.9,
1.0), so every one is passed. Keras' update is `v = rho v + (1-rho) g^2; m = mu m + lr g /
sqrt(v + eps)`, the same as TF-1's RMSProp (whose `v` started at 1 instead of 0). EMA of the
weights uses the optimizer's own `use_ema` (`ema = mu * ema + (1 - mu) * w` after each step);
under mixed_float16 the optimizer is wrapped in a dynamic `LossScaleOptimizer`.
"""

import keras


def make_optimizer(config, learning_rate, *, policy="float32"):
    """A built-to-spec Keras optimizer (call inside the strategy scope)."""
    common = dict(
        learning_rate=learning_rate,
        global_clipnorm=config.global_clipnorm,
        use_ema=config.ema_momentum is not None,
        ema_momentum=config.ema_momentum if config.ema_momentum is not None else 0.99,
    )
    if config.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(
            rho=config.rmsprop_rho, momentum=config.momentum, epsilon=config.epsilon,
            centered=False, **common)
    elif config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(epsilon=config.epsilon, **common)
    elif config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(momentum=config.momentum, **common)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def base_optimizer(optimizer):
    """The optimizer doing the updates (unwraps a LossScaleOptimizer)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def global_step(optimizer):
    """Completed training steps, as a Python int (reads the replicated counter)."""
    return int(base_optimizer(optimizer).iterations.value.numpy())
