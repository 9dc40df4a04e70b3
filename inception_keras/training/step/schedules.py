"""Learning rate per step: exponential decay counted from step 0, a floor, an optional warm-up.

    peak      = base_lr * global_batch / reference_batch     (reference_batch 0: peak = base_lr)
    decayed   = peak * decay_rate ** floor(s / decay_steps)   (smooth power when not staircase)
    lr(s)     = max(warm-up(decayed)(s), floor_fraction * peak)

That is `tf.compat.v1.train.exponential_decay` followed by `tf.maximum(lr, 1e-4 * initial)`, as
in the Cloud TPU reference (tensorflow/tpu models/experimental/inception/inception_v3.py). The
decay counts from step 0 whatever the warm-up, so a warm-up never shifts the decay. Warm-ups:

- "none": the decayed rate from the first step (the paper, TF-slim, the TPU reference's default).
- "linear": decayed(s) * min(1, (s + 1) / warmup_steps) (Goyal et al. 2017).
- "tpu_reference": the TPU reference's `use_learning_rate_warmup` shape, by whole epochs `e`:
  0.1 * a for e < cold, then a * (0.1 + 0.9 * (e - cold + 1) / (warmup + decay_epochs - 1)) until
  e reaches cold + warmup + decay_epochs, then decayed(s); a = peak * decay_rate **
  ((warmup + cold) / decay_epochs).

An epoch is `num_train_examples / global_batch` steps, a real number as in the reference, when
the run's epoch is the full pass; otherwise the run's `steps_per_epoch`. The step `s` is the
trainer's own step counter (every step taken on data, including those loss scaling skipped),
restored with the checkpoint, so the schedule continues exactly on resume. Every operation is a
plain TensorFlow op on the step tensor, so the schedule runs inside an XLA-compiled train step.
"""

import keras
import tensorflow as tf

from inception_keras.choices import WARMUPS


def peak_learning_rate(base_learning_rate, global_batch_size, reference_batch_size):
    """The linear scaling rule (Goyal et al. 2017): lr grows with the batch when a reference is set."""
    if reference_batch_size:
        return base_learning_rate * global_batch_size / reference_batch_size
    return base_learning_rate


@keras.saving.register_keras_serializable(package="inception_keras")
class InceptionSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """See the module docstring. Steps and epochs are Python numbers fixed at construction."""

    def __init__(self, peak_learning_rate, decay_steps, decay_rate, staircase=True,
                 floor_fraction=0.0, warmup="none", warmup_steps=0, epoch_steps=1.0,
                 warmup_epochs=0.0, cold_epochs=0.0, decay_epochs=1.0):
        if warmup not in WARMUPS:
            raise ValueError(f"unknown warmup {warmup!r}: use one of {', '.join(WARMUPS)}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.decay_steps = max(int(decay_steps), 1)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.floor_fraction = float(floor_fraction)
        self.warmup = warmup
        self.warmup_steps = int(warmup_steps)
        self.epoch_steps = float(epoch_steps)
        self.warmup_epochs = float(warmup_epochs)
        self.cold_epochs = float(cold_epochs)
        self.decay_epochs = float(decay_epochs)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = self._decayed(step)
        if self.warmup == "linear" and self.warmup_steps > 0:
            rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        elif self.warmup == "tpu_reference":
            rate = self._tpu_reference_warmup(step, rate)
        return tf.maximum(rate, self.floor_fraction * self.peak_learning_rate)

    def _decayed(self, step):
        periods = step / self.decay_steps
        if self.staircase:
            periods = tf.floor(periods)
        return self.peak_learning_rate * tf.pow(tf.constant(self.decay_rate, tf.float32), periods)

    def _tpu_reference_warmup(self, step, decayed):
        epoch = tf.floor(step / self.epoch_steps)
        ramp_epochs = self.warmup_epochs + self.decay_epochs - 1.0
        start = self.peak_learning_rate * self.decay_rate ** (
            (self.warmup_epochs + self.cold_epochs) / self.decay_epochs)
        ramp = 0.1 * start + (epoch - self.cold_epochs + 1.0) * (0.9 * start / ramp_epochs)
        ramped = tf.where(epoch >= self.cold_epochs + self.warmup_epochs + self.decay_epochs,
                          decayed, ramp)
        return tf.where(epoch >= self.cold_epochs, ramped, 0.1 * start)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "floor_fraction": self.floor_fraction,
            "warmup": self.warmup,
            "warmup_steps": self.warmup_steps,
            "epoch_steps": self.epoch_steps,
            "warmup_epochs": self.warmup_epochs,
            "cold_epochs": self.cold_epochs,
            "decay_epochs": self.decay_epochs,
        }


def epoch_length(global_batch_size, steps_per_epoch, num_train_examples=None):
    """Steps per epoch as the schedule counts them: examples / batch (a real number, as in the TPU
    reference) when `steps_per_epoch` is that full pass; `steps_per_epoch` when it was set shorter.
    """
    if num_train_examples and num_train_examples // global_batch_size == steps_per_epoch:
        return num_train_examples / global_batch_size
    return float(steps_per_epoch)


def cosine_schedule(peak, total_steps, warmup_steps, final_fraction):
    """Keras' `CosineDecay`: a linear warm-up from peak / warmup_steps to `peak` over
    `warmup_steps`, then a cosine from `peak` to `final_fraction` x peak at the last step."""
    warmup_steps = min(int(warmup_steps), max(int(total_steps) - 1, 0))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / warmup_steps if warmup_steps else peak,
        decay_steps=max(int(total_steps) - warmup_steps, 1), alpha=final_fraction,
        warmup_target=peak if warmup_steps else None, warmup_steps=warmup_steps)


def make_schedule(config, *, global_batch_size, steps_per_epoch, num_train_examples=None):
    """(schedule, one-line description) from a TrainConfig and the run's batch and epoch length.

    `num_train_examples` (optional) makes an epoch examples / batch steps, a real number, exactly
    as the TPU reference counts it; without it an epoch is `steps_per_epoch`.
    `lr_schedule=cosine` decays over the run's `epochs x steps_per_epoch` steps instead.
    """
    peak = peak_learning_rate(config.base_learning_rate, global_batch_size,
                              config.lr_reference_batch_size)
    epoch = epoch_length(global_batch_size, steps_per_epoch, num_train_examples)
    decay_steps = max(int(config.decay_epochs * epoch), 1)  # int() truncates, as the reference
    warmup_steps = int(round(config.warmup_epochs * epoch)) if config.warmup == "linear" else 0
    if config.lr_schedule == "cosine":
        total = config.epochs * steps_per_epoch
        warm = f"linear warm-up {warmup_steps} steps; " if warmup_steps else ""
        return (cosine_schedule(peak, total, warmup_steps, config.lr_floor_fraction),
                f"peak {peak:.4g}; {warm}cosine to {config.lr_floor_fraction:g} x peak at step "
                f"{total}")
    schedule = InceptionSchedule(
        peak, decay_steps, config.decay_rate, config.staircase,
        floor_fraction=config.lr_floor_fraction, warmup=config.warmup,
        warmup_steps=warmup_steps, epoch_steps=epoch, warmup_epochs=config.warmup_epochs,
        cold_epochs=config.cold_epochs, decay_epochs=config.decay_epochs)
    return schedule, _describe(config, peak, global_batch_size, decay_steps, warmup_steps)


def _describe(config, peak, global_batch_size, decay_steps, warmup_steps):
    rule = (f" = {config.base_learning_rate:g} x {global_batch_size}/"
            f"{config.lr_reference_batch_size}" if config.lr_reference_batch_size else "")
    warm = {"none": "no warm-up",
            "linear": f"linear warm-up {warmup_steps} steps",
            "tpu_reference": (f"TPU-reference warm-up ({config.cold_epochs:g} cold + "
                              f"{config.warmup_epochs:g} ramp epochs)")}[config.warmup]
    floor = (f"; floor {config.lr_floor_fraction:g} x peak" if config.lr_floor_fraction else "")
    return (f"peak {peak:.4g}{rule}; {warm}; x{config.decay_rate:g} every {decay_steps} steps "
            f"({config.decay_epochs:g} epochs) from step 0{floor}")
