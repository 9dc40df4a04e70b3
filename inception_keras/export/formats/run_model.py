"""A training run's model, as the export CLI takes it: `--model <model_dir>`.

`load_run_model(model_dir)` rebuilds the run's network from its `config.json` in float32 and
loads its newest checkpoint (its EMA weights when the run kept them), through the same restore
as fine-tuning from a run (`inception_keras.training.transfer.load_init_weights`).
"""

import dataclasses
import os
import re

import tensorflow as tf

from inception_keras.export.errors import ExportError

CHECKPOINT_STEP = re.compile(r"ckpt-(\d+)$")


@dataclasses.dataclass(frozen=True)
class RunModel:
    """A run's model with its newest checkpoint's weights, and what the export needs of the run."""

    model: object  # keras.Model, float32, the run's architecture (with its auxiliary head)
    config: object  # configs.base.TrainConfig of the run
    class_names: tuple
    source: dict  # for the card: model_dir, checkpoint, step, weights


def is_run_dir(path):
    """True when `path` is a folder holding a training run's config.json."""
    from inception_keras.training.checkpoints import CONFIG_FILE

    return tf.io.gfile.isdir(path) and tf.io.gfile.exists(os.path.join(path, CONFIG_FILE))


def load_run_model(model_dir):
    """The `RunModel` of a training run's `model_dir`; ExportError (one line) when it has none."""
    import keras

    from configs.base import ConfigError, TrainConfig
    from inception_keras.data import DataError, dataset_info
    from inception_keras.models.inception_v3 import build_inception_v3
    from inception_keras.training.checkpoints import CHECKPOINT_SUBDIR, load_config_dict
    from inception_keras.training.transfer import load_init_weights

    saved = load_config_dict(model_dir)
    if saved is None:
        raise ExportError(f"{model_dir} has no config.json: pass a training run's --model_dir "
                          "or a .keras file.")
    try:
        config = TrainConfig.from_dict(saved)
        info = dataset_info(config.dataset, config.data_dir)
    except (ConfigError, DataError) as error:
        raise ExportError(f"run {model_dir}: {error}") from None
    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_SUBDIR))
    if checkpoint is None:
        raise ExportError(f"run {model_dir} has no checkpoint in {CHECKPOINT_SUBDIR}/: train first.")
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        model = build_inception_v3(
            weights=None, input_shape=(config.image_size, config.image_size, 3),
            classes=info.num_classes, include_aux=config.include_aux,
            dropout_rate=config.dropout_rate, variant=config.variant,
            depth_multiplier=config.depth_multiplier, min_depth=config.min_depth,
            batch_norm_momentum=config.batch_norm_momentum)
        report = load_init_weights(model, checkpoint)
    except ValueError as error:
        raise ExportError(f"run {model_dir}: {str(error).splitlines()[0]}") from None
    finally:
        keras.config.set_dtype_policy(policy)
    if report.kept_fresh or report.not_in_source:
        raise ExportError(f"run {model_dir}: its checkpoint does not hold this network "
                          f"({'; '.join(report.lines()[1:])}).")
    step = CHECKPOINT_STEP.search(checkpoint)
    source = {
        "model_dir": model_dir,
        "checkpoint": checkpoint,
        "step": int(step.group(1)) if step else None,
        "weights": "EMA" if _has_ema(checkpoint) else "raw",
    }
    return RunModel(model, config, tuple(info.class_names), source)


def _has_ema(checkpoint):
    """Whether the checkpoint holds EMA averages (then `load_init_weights` loaded them)."""
    return any(name.split("/")[0] == "ema" for name, _ in tf.train.list_variables(checkpoint))
