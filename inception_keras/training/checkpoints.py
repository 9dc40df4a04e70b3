"""Checkpoints that survive SIGKILL, and the saved config that guards a resume.

Layout of a model dir:
    config.json          the resolved TrainConfig of the run (written once, atomically)
    checkpoints/ckpt-S   model + optimizer (slots, EMA averages, step counter) at global step S
    checkpoints/checkpoint   index naming the newest complete checkpoint
    tensorboard/         summaries

Checkpoints are `tf.train.Checkpoint`s written through a `CheckpointManager`: the data files are
written under a temporary name and moved in place, and only then is the `checkpoint` index updated
(an atomic rename), so a kill at any moment leaves the previous checkpoint as the newest valid
one. A checkpoint is never written from non-finite weights or after a NaN loss, so the last good
one is kept. Epoch and step of a resumed run follow from the restored step counter.
"""

import json
import math
import os

import keras
import tensorflow as tf

from inception_keras.training.optimizers import global_step

CONFIG_FILE = "config.json"
CHECKPOINT_SUBDIR = "checkpoints"

# Config keys that must not change when resuming, with why. Others (epochs, data_dir, eval and
# logging settings, learning-rate values, export_dir, ...) may change between runs.
RESUME_KEYS = {
    "dataset": "the classes would change",
    "variant": "the network would change",
    "depth_multiplier": "the layer widths would change",
    "min_depth": "the layer widths would change",
    "include_aux": "the auxiliary head's variables would change",
    "image_size": "the model was trained at another resolution",
    "optimizer": "the optimizer state would not fit",
    "global_batch_size": "steps, epochs and the learning rate would no longer line up",
    "steps_per_epoch": "the epoch of the saved step would change",
}


class ResumeConflict(ValueError):
    """The new run's config differs from the saved one in a key that matters (exit code 2)."""


def _atomic_write(path, text):
    temp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(temp, path, overwrite=True)


def save_config(config, model_dir):
    """Writes `config.json` (the resolved config) atomically."""
    tf.io.gfile.makedirs(model_dir)
    _atomic_write(os.path.join(model_dir, CONFIG_FILE), config.to_json() + "\n")


def load_config_dict(model_dir):
    """The saved config of `model_dir` as a dict, or None when there is none."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def check_resume_compatible(saved, new):
    """Raises ResumeConflict when `new` (a resolved config) changes a key of RESUME_KEYS."""
    new = new.to_dict()
    changed = [key for key in RESUME_KEYS if key in saved and saved[key] != new[key]]
    if (saved.get("ema_momentum") is None) != (new["ema_momentum"] is None):
        changed.append("ema_momentum")
    saved_fp16 = saved.get("precision") == "mixed_float16"
    if "precision" in saved and saved_fp16 != (new["precision"] == "mixed_float16"):
        changed.append("precision")  # loss scaling changes the optimizer's saved state
    if not changed:
        return
    details = ", ".join(f"{key} {saved.get(key)!r} -> {new[key]!r}" for key in changed)
    fixes = " ".join(f"--set {key}={saved.get(key)}" for key in changed)
    raise ResumeConflict(
        f"cannot resume {new.get('model_dir')}: its saved config differs in {details}; "
        f"rerun with {fixes} to continue it, or use a new --model_dir"
    )


def make_checkpoint(model):
    """The tf.train.Checkpoint of everything a resume needs (weights, optimizer slots, EMA, step)."""
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def make_manager(checkpoint, directory, max_to_keep):
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)


def restore_latest(checkpoint, directory, *, expect_partial=False):
    """Restores the newest readable checkpoint of `directory`; returns its path or None.

    Falls back to older checkpoints of the index if the newest cannot be read.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    candidates = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    if state.model_checkpoint_path not in candidates:
        candidates.append(state.model_checkpoint_path)
    errors = []
    for path in reversed(candidates):
        if not os.path.isabs(path) and "://" not in path:
            path = os.path.join(directory, path)
        try:
            status = checkpoint.restore(path)
            if expect_partial:
                status.expect_partial()
            else:
                status.assert_existing_objects_matched()
            return path
        except Exception as error:  # truncated files raise OpError, IndexError, ValueError, ...
            errors.append(f"{os.path.basename(path)}: {type(error).__name__}")
    raise RuntimeError(f"no readable checkpoint in {directory} ({'; '.join(errors)})")


def weights_finite(model):
    """True when every trainable weight of the model is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(v.value)) for v in model.trainable_variables]
    return bool(tf.reduce_all(tf.stack(checks)).numpy()) if checks else True


class CheckpointCallback(keras.callbacks.Callback):
    """Saves at the end of every epoch and every `every_steps` steps; never a non-finite state.

    On non-chief workers of a multi-worker run `manager` writes to a temporary directory (every
    worker must take part in the save); only the chief's checkpoints are kept.
    """

    def __init__(self, manager, every_steps=0, print_fn=print):
        super().__init__()
        self.manager = manager
        self.every_steps = every_steps
        self.print_fn = print_fn
        self._last_saved = None
        self.skipped = 0

    def on_train_begin(self, logs=None):
        if self._last_saved is None:
            self._last_saved = global_step(self.model.optimizer)

    def _save(self, logs):
        step = global_step(self.model.optimizer)
        if step == self._last_saved:
            return None
        loss = (logs or {}).get("loss")
        finite_loss = loss is None or math.isfinite(float(loss))
        if self.model.stop_training or not finite_loss or not weights_finite(self.model):
            self.skipped += 1
            self.print_fn(f"not saving step {step}: non-finite loss or weights; "
                          f"keeping {self.manager.latest_checkpoint}")
            return None
        path = self.manager.save(checkpoint_number=step)
        self._last_saved = step
        return path

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps:
            step = global_step(self.model.optimizer)
            if step - self._last_saved >= self.every_steps:
                self._save(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._save(logs)
