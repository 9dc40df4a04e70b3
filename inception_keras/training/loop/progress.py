"""What a run tells people: progress lines (through `logging`) and TensorBoard summaries.

Both are keyed by the trainer's own step counter, so a resumed run continues its curves
instead of overwriting them.
"""

import logging
import sys
import time

import numpy as np
import tensorflow as tf

logger = logging.getLogger("inception_keras")


def setup_logging():
    """Lines of the `inception_keras` logger go to stdout as they are (the trainer's output)."""
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class Window:
    """Training sums since the last progress line: loss, top-1, images, steps and seconds."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss = self.top1 = self.examples = 0.0
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, stats, steps):
        self.loss += stats["loss"]
        self.top1 += stats["top1"]
        self.examples += stats["examples"]
        self.steps += steps

    def means(self):
        seconds = time.perf_counter() - self.started
        return {"loss": self.loss / max(self.steps, 1),
                "top1": self.top1 / max(self.examples, 1.0),
                "step_time_s": seconds / max(self.steps, 1),
                "images_per_s": self.examples / seconds if seconds > 0 else 0.0}


def where(step, steps_per_epoch, epochs):
    """'epoch E/N step S/T' of global step `step` (steps taken so far)."""
    epoch = (step - 1) // steps_per_epoch + 1 if step else 1
    return f"epoch {epoch}/{epochs} step {step - (epoch - 1) * steps_per_epoch}/{steps_per_epoch}"


def step_line(step, steps_per_epoch, epochs, means, learning_rate, skipped, *, timed=True):
    parts = [where(step, steps_per_epoch, epochs), f"loss {means['loss']:.4f}",
             f"top1 {means['top1']:.3f}", f"lr {learning_rate:.3g}"]
    if timed:
        parts.append(f"{means['images_per_s']:.1f} img/s")
    if skipped:
        parts.append(f"skipped {skipped} (loss scaling)")
    return "  ".join(parts)


def validation_text(validation):
    return (f"val_top1 {validation['top1']:.4f}  val_top5 {validation['top5']:.4f}  "
            f"on {validation['examples']} images")


def epoch_line(epoch, epochs, train, validation=None):
    parts = [f"epoch {epoch}/{epochs} done", f"loss {train['loss']:.4f}", f"top1 {train['top1']:.3f}"]
    if validation:
        parts.append(validation_text(validation))
    return "  ".join(parts)


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


class Summaries:
    """TensorBoard scalars and images under `log_dir` (the chief writes; others pass None)."""

    def __init__(self, log_dir):
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def scalars(self, prefix, values, step):
        if self.writer is None:
            return
        with self.writer.as_default():
            for key, value in values.items():
                tf.summary.scalar(f"{prefix}/{key}", float(value), step=step)
        self.writer.flush()

    def images(self, name, images, step, description):
        if self.writer is None or images is None:
            return
        with self.writer.as_default():
            tf.summary.image(name, image_grid(images), step=step, description=description)
        self.writer.flush()

    def histograms(self, values, step):
        """`values`: {tag: array}; each written as a TensorBoard histogram at `step`."""
        if self.writer is None:
            return
        with self.writer.as_default():
            for tag, value in values.items():
                tf.summary.histogram(tag, value, step=step)
        self.writer.flush()
