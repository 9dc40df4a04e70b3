"""Training recipes as Python data: `get_config(name_or_path)` returns a `TrainConfig`.

Recipes: smoke, paper, tpu, gpu, finetune, finetune_augmented, and the paper's other rows
(paper_v2, paper_v2_rmsprop, paper_v2_smoothing, paper_v2_factorized of Table 3; paper_res151,
paper_res79 of Table 2), one module each, with a `get_config()` function.
`--config` also accepts a path to any .py file defining `get_config()` that returns a
`TrainConfig`.
"""

import importlib
import importlib.util
import os

from configs.base import ConfigError, TrainConfig, apply_overrides, describe_fields

RECIPES = ("smoke", "paper", "tpu", "gpu", "finetune", "finetune_augmented", "paper_v2",
           "paper_v2_rmsprop", "paper_v2_smoothing", "paper_v2_factorized", "paper_res151",
           "paper_res79")

__all__ = ["RECIPES", "ConfigError", "TrainConfig", "apply_overrides", "describe_fields",
           "get_config"]


def _load_file(path):
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path} does not exist: pass a recipe name "
                          f"({', '.join(RECIPES)}) or a path to a .py file with get_config()")
    spec = importlib.util.spec_from_file_location("_user_config", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a broken user file is a user error, not a crash
        raise ConfigError(f"config file {path} failed to load: {type(error).__name__}: {error}")
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path} has no get_config() function: define one "
                          "that returns configs.base.TrainConfig")
    return module.get_config()


def get_config(name_or_path):
    """A recipe by name (one of `RECIPES`) or from a .py file's `get_config()`."""
    if name_or_path.endswith(".py") or os.sep in name_or_path:
        config = _load_file(name_or_path)
    elif name_or_path in RECIPES:
        config = importlib.import_module(f"configs.{name_or_path}").get_config()
    else:
        raise ConfigError(f"unknown config {name_or_path!r}: use one of {', '.join(RECIPES)} "
                          "or a path to a .py file defining get_config()")
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config {name_or_path!r}: get_config() must return a TrainConfig, "
                          f"got {type(config).__name__}")
    return config
