"""A training run's model, as `python -m inception_keras.export --model <model_dir>` takes it.

`load_run_model(model_dir)` rebuilds the run's network from its `config.json` in float32 and
loads its newest checkpoint (its EMA weights when the run kept them), through the trainer's own
restore (the one --export_only and --eval_only use). The export library takes the model and its
metadata; loading a run is training's, so the export package imports nothing of training.
"""

import dataclasses
import os

import tensorflow as tf

from configs.base import ConfigError, TrainConfig
from inception_keras.export.errors import ExportError
from inception_keras.training.entries import restored_trainer
from inception_keras.training.errors import TrainerError
from inception_keras.training.loop.checkpoints import CONFIG_FILE, load_config_dict
from inception_keras.training.setup import setup_run


@dataclasses.dataclass(frozen=True)
class RunModel:
    """A run's model with its newest checkpoint's weights, and what the export needs of the run."""

    model: object  # keras.Model, float32, the run's architecture (with its auxiliary head)
    config: object  # configs.base.TrainConfig of the run
    class_names: tuple
    source: dict  # for the card: model_dir, checkpoint, step, weights


def is_run_dir(path):
    """True when `path` is a folder holding a training run's config.json."""
    return tf.io.gfile.isdir(path) and tf.io.gfile.exists(os.path.join(path, CONFIG_FILE))


def load_run_model(model_dir):
    """The `RunModel` of a training run's `model_dir`; ExportError (one line) when it has none.

    The run's network in float32 with its newest checkpoint (EMA weights when it kept them),
    restored as the trainer's --export_only does (`entries.restored_trainer`)."""
    saved = load_config_dict(model_dir)
    if saved is None:
        raise ExportError(f"{model_dir} has no config.json: pass a training run's --model_dir "
                          "or a .keras file.")
    try:
        config = TrainConfig.from_dict(saved).replace(model_dir=model_dir).with_resolved_paths()
    except ConfigError as error:
        raise ExportError(f"run {model_dir}: {error}") from None
    try:
        setup = setup_run(config, export_only=True)
        trainer, checkpoint = restored_trainer(setup, "--model", lambda line: None)
    except TrainerError as error:
        raise ExportError(str(error)) from None
    source = {"model_dir": model_dir, "checkpoint": checkpoint, "step": trainer.step,
              "weights": "EMA" if trainer.ema is not None else "raw"}
    return RunModel(trainer.serving_model(), setup.config, tuple(setup.info.class_names), source)
