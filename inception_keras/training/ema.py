"""Evaluating and exporting with the optimizer's exponential moving average of the weights.

Keras keeps the averages in the optimizer (`use_ema=True`); `keras.callbacks.SwapEMAWeights`
swaps them into the model around `evaluate` (with `tf.distribute`-aware assignments) and back
afterwards, so training continues from the raw weights and checkpoints keep both.
"""

import contextlib

import keras

from inception_keras.training.optimizers import base_optimizer


def uses_ema(model):
    optimizer = getattr(model, "optimizer", None)
    return bool(optimizer is not None and getattr(base_optimizer(optimizer), "use_ema", False))


def swap_callback(model):
    """A SwapEMAWeights callback (evaluate/predict with EMA weights) or None without EMA."""
    if not uses_ema(model):
        return None
    return keras.callbacks.SwapEMAWeights(swap_on_epoch=False)


@contextlib.contextmanager
def ema_weights(model):
    """Within the block the model holds the EMA weights (no-op without EMA); swapped back after."""
    callback = swap_callback(model)
    if callback is None:
        yield model
        return
    callback.set_model(model)
    callback.on_test_begin()
    try:
        yield model
    finally:
        callback.on_test_end()
