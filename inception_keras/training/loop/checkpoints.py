"""Checkpoints that survive SIGKILL, and the saved config that guards a resume.

Layout of a model dir:
    config.json          the resolved TrainConfig of the run (written once, atomically)
    checkpoints/ckpt-S   model, optimizer slots, step counters, EMA averages, loss scale at step S
    checkpoints/checkpoint   index naming the newest complete checkpoint
    tensorboard/         summaries

Checkpoints are `tf.train.Checkpoint`s written through a `CheckpointManager`: the data files are
written under a temporary name and moved in place, and only then is the `checkpoint` index updated
(an atomic rename), so a kill at any moment leaves the previous checkpoint as the newest valid
one. A checkpoint is never written from non-finite weights or after a NaN loss, so the last good
one is kept. Epoch and step of a resumed run follow from the trainer's restored step counter.
"""

import json
import math
import os

import tensorflow as tf

from inception_keras import atomic

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
    "stem": "the network would change",
    "aux_batch_norm": "the auxiliary head's variables would change",
    "receptive_field": "the network would change",
    "image_size": "the model was trained at another resolution",
    "optimizer": "the optimizer state would not fit",
    "global_batch_size": "steps, epochs and the learning rate would no longer line up",
    "steps_per_epoch": "the epoch of the saved step would change",
    "head_lr_multiplier": "the optimizer state is kept per parameter group when it is not 1",
}


class ResumeConflict(ValueError):
    """The new run's config differs from the saved one in a key that matters (exit code 2)."""


def save_config(config, model_dir):
    """Writes `config.json` (the resolved config) atomically."""
    tf.io.gfile.makedirs(model_dir)
    atomic.write_text(os.path.join(model_dir, CONFIG_FILE), config.to_json() + "\n")


def load_config_dict(model_dir):
    """The saved config of `model_dir` as a dict, or None when there is none."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def check_resume_compatible(saved, new):
    """Raises ResumeConflict when `new` (a resolved config) changes a key of RESUME_KEYS."""
    defaults = type(new)().to_dict()  # a key newer than the saved config has its default
    new = new.to_dict()
    saved = {**{key: defaults[key] for key in RESUME_KEYS if key not in saved}, **saved}
    changed = [key for key in RESUME_KEYS if saved[key] != new[key]]
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


def make_checkpoint(**objects):
    """The tf.train.Checkpoint of everything a resume needs: model, optimizer (slots), the
    trainer's step counters, EMA averages and loss scale (None entries are left out)."""
    return tf.train.Checkpoint(**{name: obj for name, obj in objects.items() if obj is not None})


def make_manager(checkpoint, directory, max_to_keep, checkpoint_name="ckpt"):
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep,
                                      checkpoint_name=checkpoint_name)


class CheckpointError(RuntimeError):
    """No checkpoint of a run can be read; the message gives the real error of the newest."""


def restore_latest(checkpoint, directory, *, expect_partial=False):
    """Restores the newest readable checkpoint of `directory`; returns its path or None.

    Falls back to older checkpoints of the index if the newest cannot be read (a truncated
    file, a disk that filled up); CheckpointError with the newest one's real message if none
    can be.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    # get_checkpoint_state already joined the index's relative names with `directory`
    candidates = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    if state.model_checkpoint_path not in candidates:
        candidates.append(state.model_checkpoint_path)
    failures = []
    for path in reversed(candidates):
        try:
            status = checkpoint.restore(path)
            if expect_partial:
                status.expect_partial()
            else:
                status.assert_existing_objects_matched()
            return path
        except Exception as error:  # truncated files raise OpError, IndexError, ValueError, ...
            failures.append((path, error))
    newest, error = failures[0]
    older = f"; the {len(failures) - 1} older one(s) fail too" if len(failures) > 1 else ""
    raise CheckpointError(f"no readable checkpoint in {directory}: the newest, "
                          f"{os.path.basename(newest)}, fails with {type(error).__name__}: "
                          f"{_first_line(error)}{older}")


def _first_line(error):
    text = (getattr(error, "message", None) or str(error)).strip()
    return text.splitlines()[0] if text else "(no message)"


def weights_finite(model):
    """True when every trainable weight of the model is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(v.value)) for v in model.trainable_variables]
    return bool(tf.reduce_all(tf.stack(checks)).numpy()) if checks else True


def save_if_finite(manager, step, model, loss):
    """Saves checkpoint `step` unless the loss or a weight is non-finite; returns its path or None.

    Skipping a non-finite state keeps the last good checkpoint the newest. On non-chief workers
    of a multi-worker run `manager` writes to a temporary directory (every worker must take part
    in the save); only the chief's are kept.
    """
    if not math.isfinite(loss) or not weights_finite(model):
        return None
    return manager.save(checkpoint_number=step)
