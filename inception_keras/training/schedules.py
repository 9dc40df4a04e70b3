"""Learning rate per step: linear warm-up, then x decay_rate every decay_epochs (staircase).

    peak   = base_lr * global_batch / reference_batch    (reference_batch 0: peak = base_lr)
    lr(s)  = peak * (s + 1) / warmup_steps                          for s < warmup_steps
    lr(s)  = peak * decay_rate ** floor((s - warmup_steps) / decay_steps)   afterwards

The step `s` is the optimizer's iteration count, so the schedule continues exactly on resume.
"""

import keras
import tensorflow as tf


def peak_learning_rate(base_learning_rate, global_batch_size, reference_batch_size):
    """The linear scaling rule (Goyal et al. 2017): lr grows with the batch when a reference is set."""
    if reference_batch_size:
        return base_learning_rate * global_batch_size / reference_batch_size
    return base_learning_rate


@keras.saving.register_keras_serializable(package="inception_keras")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """See the module docstring; `staircase=False` decays smoothly instead."""

    def __init__(self, peak_learning_rate, warmup_steps, decay_steps, decay_rate, staircase=True):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = max(int(decay_steps), 1)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak_learning_rate, tf.float32)
        after = tf.maximum(step - self.warmup_steps, 0.0) / self.decay_steps
        if self.staircase:
            after = tf.floor(after)
        decayed = peak * tf.pow(tf.constant(self.decay_rate, tf.float32), after)
        if self.warmup_steps <= 0:
            return decayed
        warm = peak * (step + 1.0) / self.warmup_steps
        return tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


def make_schedule(config, *, global_batch_size, steps_per_epoch):
    """(schedule, one-line description) from a TrainConfig and the run's batch and epoch length."""
    peak = peak_learning_rate(config.base_learning_rate, global_batch_size,
                              config.lr_reference_batch_size)
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))  # warm-up in steps
    decay_steps = max(int(round(config.decay_epochs * steps_per_epoch)), 1)  # decay period
    schedule = WarmupExponentialDecay(peak, warmup_steps, decay_steps, config.decay_rate,
                                      config.staircase)
    rule = (f" = {config.base_learning_rate:g} x {global_batch_size}/"
            f"{config.lr_reference_batch_size}" if config.lr_reference_batch_size else "")
    text = (f"peak {peak:.4g}{rule}; warm-up {warmup_steps} steps; "
            f"x{config.decay_rate:g} every {decay_steps} steps ({config.decay_epochs:g} epochs)")
    return schedule, text

