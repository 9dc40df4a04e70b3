"""What a run tells people: progress lines (through `logging`) and TensorBoard summaries.

Both are keyed by the trainer's own step counter, so a resumed run continues its curves
instead of overwriting them.

TensorBoard: one run (sub-folder of `<model_dir>/tensorboard`) per source and the same tag for
the same quantity, so TensorBoard overlays them on one chart, as Keras' TensorBoard callback
(`train`, `validation`) and Model Garden do:

    train/        metrics/loss, metrics/cross_entropy, metrics/top1 (means since the last point),
                  optimizer/learning_rate, stability/skipped_steps, stability/recoveries,
                  perf/step_time_s, perf/images_per_s, gradients/* and weights/* (histogram_every);
                  at a fresh start: the text `config` and the image `training_inputs`
    validation/   metrics/top1, metrics/top5, metrics/cross_entropy at each validation
    final/        the same three of the final evaluation, per_class/top1/<class> (up to
                  MAX_CLASS_SCALARS classes), the text `per_class/top1`, the image
                  `per_class/confusion_matrix`, and the run's config as HParams (its session)
    watch/        the same three, of each checkpoint a watcher scored (watcher.py)

Tag groups (a tag's first component) sort alphabetically in the Time Series and Scalars tabs:
`metrics` comes before `optimizer`, `per_class`, `perf`, `stability` and `training_inputs` (only
the opt-in `gradients` sorts above it), so the final results sit below the training curves.
"""

import contextlib
import json
import logging
import sys
import time

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from inception_keras.training.records import confusion

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
        self.loss = self.top1 = self.examples = self.cross_entropy = 0.0
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, stats, steps):
        self.loss += stats["loss"]
        self.top1 += stats["top1"]
        self.examples += stats["examples"]
        self.cross_entropy += stats["cross_entropy"]
        self.steps += steps

    def means(self):
        seconds = time.perf_counter() - self.started
        return {"loss": self.loss / max(self.steps, 1),
                "top1": self.top1 / max(self.examples, 1.0),
                "cross_entropy": self.cross_entropy / max(self.examples, 1.0),
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


TRAIN, VALIDATION, FINAL, WATCH = "train", "validation", "final", "watch"  # the runs
EVALUATION_METRICS = ("top1", "top5", "cross_entropy")
MAX_CLASS_SCALARS = 20  # more classes: the text table only (1000 charts would bury the rest)

DESCRIPTIONS = {
    "metrics/loss": "train: the objective minimised, mean per step since the last point: the "
                    "main head's cross-entropy with label smoothing + aux_loss_weight x the "
                    "auxiliary head's + weight decay",
    "metrics/cross_entropy": "the main head's cross-entropy without label smoothing, per image. "
                             "train: on the training batches since the last point (MixUp/CutMix: "
                             "against the mixed targets); validation, watch, final: on the "
                             "validation split (final: with eval_crops crops)",
    "metrics/top1": "top-1 accuracy of the main head. train: on the training batches since the "
                    "last point (augmented, dropout on); validation, watch, final: on the "
                    "validation split (EMA weights when the run has EMA)",
    "metrics/top5": "top-5 accuracy on the validation split (validation, watch, final)",
    "optimizer/learning_rate": "the learning rate of the last step of the point",
    "stability/skipped_steps": "steps skipped so far by dynamic loss scaling (mixed_float16: "
                               "a non-finite gradient skips the update and halves the scale)",
    "stability/recoveries": "times so far the run went back to its last good checkpoint after "
                            "a non-finite loss",
    "perf/step_time_s": "seconds per training step since the last point (host included)",
    "perf/images_per_s": "training images per second since the last point, all replicas",
    "gradients/global_norm": "global norm of the all-reduced gradient of the last step, before "
                             "clipping",
}


def describe(tag):
    if tag.startswith("per_class/top1/"):
        return f"final evaluation: top-1 of the images of class {tag.split('/', 2)[2]}"
    return DESCRIPTIONS.get(tag)


def hparam_value(value):
    """A config value as an HParam value (bool, int, float or str)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def config_markdown(config):
    """The config as a markdown table of key and value (TensorBoard's Text tab renders it)."""
    rows = [f"| {key} | `{json.dumps(value)}` |" for key, value in sorted(config.to_dict().items())]
    return "\n".join(["| key | value |", "|---|---|", *rows])


def per_class_markdown(class_names, per_class):
    """Per-class top-1 as a markdown table, worst first (classes without images last)."""
    order = sorted(range(len(per_class)),
                   key=lambda i: (np.isnan(per_class[i]), per_class[i], class_names[i]))
    rows = [f"| {class_names[i]} | "
            f"{'no images' if np.isnan(per_class[i]) else f'{per_class[i]:.4f}'} |"
            for i in order]
    return "\n".join(["| class | top-1 |", "|---|---|", *rows])


class Summaries:
    """TensorBoard runs under `log_dir` (`<model_dir>/tensorboard`), one sub-folder each (see
    the module docstring); the chief writes, others pass None and nothing is written."""

    def __init__(self, log_dir):
        self.log_dir = log_dir.rstrip("/") if log_dir else None
        self.writers = {}

    @contextlib.contextmanager
    def _writing(self, run):
        writer = self.writers.get(run)
        if writer is None:
            writer = self.writers[run] = tf.summary.create_file_writer(f"{self.log_dir}/{run}")
        with writer.as_default():
            yield
        writer.flush()

    def scalars(self, run, values, step):
        """`values`: {tag: number}, each with its description (DESCRIPTIONS)."""
        if self.log_dir is None:
            return
        with self._writing(run):
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value), step=step, description=describe(tag))

    def evaluation(self, run, results, step):
        """top-1, top-5 and cross-entropy of an evaluation, under the tags every run shares."""
        self.scalars(run, {f"metrics/{key}": results[key] for key in EVALUATION_METRICS}, step)

    def images(self, run, tag, images, step, description):
        """`images`: [N, H, W, 3] in [-1, 1], written as one grid."""
        if self.log_dir is not None and images is not None:
            self.picture(run, tag, image_grid(images)[0], step, description)

    def picture(self, run, tag, image, step, description):
        """`image`: one [H, W, 3] picture, uint8 or float in [0, 1], written as it is."""
        if self.log_dir is None:
            return
        with self._writing(run):
            tf.summary.image(tag, np.asarray(image)[None], step=step, description=description)

    def text(self, run, tag, markdown, step, description):
        if self.log_dir is None:
            return
        with self._writing(run):
            tf.summary.text(tag, markdown, step=step, description=description)

    def histograms(self, run, values, step):
        """`values`: {tag: array}; each written as a TensorBoard histogram at `step`."""
        if self.log_dir is None:
            return
        with self._writing(run):
            for tag, value in values.items():
                tf.summary.histogram(tag, value, step=step)

    def run_start(self, config, images, augmentation, step):
        """What a fresh run records once: its config as text (train) and as HParams (the final
        run's session, whose metrics are the final evaluation's), and `images` ([-1, 1]
        training inputs, or None) titled with `augmentation` (what the pipeline does, in
        words)."""
        if self.log_dir is None:
            return
        self.text(TRAIN, "config", config_markdown(config), step,
                  "the resolved config the run started with (config.json holds the latest)")
        self.images(TRAIN, "training_inputs", images, step,
                    f"training images as the model sees them: {augmentation}")
        # no hparams_config: without it TensorBoard lists first the keys that differ between
        # the runs it shows (the one a ladder or sweep changes), and takes the final run's
        # scalars as the metrics
        with self._writing(FINAL):
            hparams_api.hparams({key: hparam_value(value)
                                 for key, value in config.to_dict().items()})

    def final(self, results, class_names, step):
        """The final evaluation (`results` with its `confusion` counts): its metrics, per-class
        top-1 and the confusion matrix, in the final run."""
        if self.log_dir is None:
            return
        matrix = results["confusion"]
        per_class = confusion.per_class_accuracy(matrix)
        names = list(class_names)
        self.evaluation(FINAL, results, step)
        if len(names) <= MAX_CLASS_SCALARS:
            self.scalars(FINAL, {f"per_class/top1/{name}": value
                                 for name, value in zip(names, per_class)
                                 if not np.isnan(value)}, step)
        self.text(FINAL, "per_class/top1", per_class_markdown(names, per_class), step,
                  "final evaluation: top-1 of each class, worst first")
        self.picture(FINAL, "per_class/confusion_matrix", confusion.confusion_image(matrix),
                     step, "final evaluation: rows true class, columns predicted class, "
                     "row-normalised (white none, dark blue all; grey: no images)")
