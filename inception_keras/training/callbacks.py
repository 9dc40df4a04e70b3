"""Progress lines and TensorBoard summaries, both keyed by the optimizer's global step.

Keras' own TensorBoard callback counts batches from zero in every `fit` call, so a resumed run
would overwrite its earlier curves; these callbacks use the restored step counter instead.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from inception_keras.training.losses import metric_value
from inception_keras.training.optimizers import base_optimizer, global_step


def current_learning_rate(optimizer):
    optimizer = base_optimizer(optimizer)
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class _StepTimer:
    """Seconds per step between two calls (steps_per_execution-aware, via the global step)."""

    def __init__(self):
        self._time = None
        self._step = None

    def reset(self, step):
        self._time, self._step = time.perf_counter(), step

    def lap(self, step):
        now = time.perf_counter()
        if self._time is None or step <= self._step:
            self.reset(step)
            return None
        seconds = (now - self._time) / (step - self._step)
        self._time, self._step = now, step
        return seconds


class ProgressLogger(keras.callbacks.Callback):
    """Prints `epoch E/N step S/T loss .. top1 .. lr .. img/s` every `every_steps` steps."""

    def __init__(self, *, steps_per_epoch, epochs, global_batch_size, every_steps,
                 print_fn=print):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.global_batch_size = global_batch_size
        self.every_steps = max(int(every_steps), 1)
        self.print_fn = print_fn
        self._timer = _StepTimer()
        self._last_printed = -1

    def _where(self, step):
        epoch = (step - 1) // self.steps_per_epoch + 1 if step else 1
        in_epoch = step - (epoch - 1) * self.steps_per_epoch
        return f"epoch {epoch}/{self.epochs} step {in_epoch}/{self.steps_per_epoch}"

    def on_train_begin(self, logs=None):
        self._last_printed = global_step(self.model.optimizer)
        self._timer = _StepTimer()  # the first lap (tracing) is not timed

    def on_epoch_begin(self, epoch, logs=None):
        self._timer = _StepTimer()  # nor the first step after an evaluation

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model.optimizer)
        end_of_epoch = step % self.steps_per_epoch == 0
        if step - self._last_printed < self.every_steps and not end_of_epoch and (
                self._timer._time is not None):
            return
        seconds = self._timer.lap(step)
        self._last_printed = step
        logs = logs or {}
        loss = float(logs.get("loss", float("nan")))
        parts = [self._where(step), f"loss {loss:.4f}"]
        top1 = metric_value(logs, "top1")
        if top1 is not None:
            parts.append(f"top1 {top1:.3f}")
        parts.append(f"lr {current_learning_rate(self.model.optimizer):.3g}")
        if seconds:
            parts.append(f"{self.global_batch_size / seconds:.1f} img/s")
        self.print_fn("  ".join(parts))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.epochs} done", f"loss {logs.get('loss', float('nan')):.4f}"]
        for key in ("top1", "top5"):
            value = metric_value(logs, key)
            if value is not None:
                parts.append(f"{key} {value:.3f}")
        for key in ("top1", "top5"):
            for name in (f"val_predictions_{key}", f"val_{key}"):
                if name in logs:
                    parts.append(f"val_{key} {float(logs[name]):.3f}")
                    break
        self.print_fn("  ".join(parts))


def image_grid(images, columns=4):
    """[N, H, W, 3] in [-1, 1] -> one [1, rows*H, columns*W, 3] image in [0, 1] (for TensorBoard)."""
    images = np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    count = min(len(images), columns * max(len(images) // columns, 1))
    images = images[:count]
    rows = max(count // columns, 1)
    columns = count // rows
    height, width = images.shape[1:3]
    grid = images.reshape(rows, columns, height, width, 3).transpose(0, 2, 1, 3, 4)
    return grid.reshape(1, rows * height, columns * width, 3)


class TensorBoardLogger(keras.callbacks.Callback):
    """Scalars (losses, accuracies, learning rate, step time, images/s) every `every_steps`
    steps, validation metrics per epoch, and a grid of augmented training images at the start."""

    def __init__(self, log_dir, *, every_steps, global_batch_size, sample_images=None):
        super().__init__()
        self.log_dir = log_dir
        self.every_steps = max(int(every_steps), 1)
        self.global_batch_size = global_batch_size
        self.sample_images = sample_images
        self._writer = None
        self._timer = _StepTimer()
        self._last_written = -1

    def _get_writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_train_begin(self, logs=None):
        step = global_step(self.model.optimizer)
        self._timer = _StepTimer()  # the first lap (tracing) is not timed
        if self.sample_images is not None:
            with self._get_writer().as_default():
                tf.summary.image("augmented_inputs", image_grid(self.sample_images), step=step,
                                 description="training images after augmentation")
            self.sample_images = None  # once per run

    def on_epoch_begin(self, epoch, logs=None):
        self._timer = _StepTimer()

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model.optimizer)
        if step - self._last_written < self.every_steps and self._timer._time is not None:
            return
        self._last_written = step
        seconds = self._timer.lap(step)
        with self._get_writer().as_default():
            for key, value in (logs or {}).items():
                tf.summary.scalar(f"train/{key}", float(value), step=step)
            tf.summary.scalar("train/learning_rate", current_learning_rate(self.model.optimizer),
                              step=step)
            if seconds:
                tf.summary.scalar("perf/step_time_s", seconds, step=step)
                tf.summary.scalar("perf/images_per_s", self.global_batch_size / seconds, step=step)

    def on_epoch_end(self, epoch, logs=None):
        step = global_step(self.model.optimizer)
        with self._get_writer().as_default():
            for key, value in (logs or {}).items():
                if key.startswith("val_"):
                    tf.summary.scalar(f"eval/{key[4:]}", float(value), step=step)
            tf.summary.scalar("train/epoch", epoch + 1, step=step)
        self._writer.flush()

    def write_scalars(self, prefix, values, step):
        with self._get_writer().as_default():
            for key, value in values.items():
                tf.summary.scalar(f"{prefix}/{key}", float(value), step=step)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()
