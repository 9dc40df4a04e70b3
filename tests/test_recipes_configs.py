"""Each recipe states every training knob itself; TrainConfig's defaults are neutral, not a recipe."""

import importlib
import os

import pytest

import configs
from configs.base import ConfigError, TrainConfig, apply_overrides

# The knobs of the README's "Recipes" table: a recipe must set each one in its own file.
COMMON_KNOBS = {
    "optimizer", "base_learning_rate", "lr_reference_batch_size", "epsilon", "global_clipnorm",
    "weight_decay", "decay_rate", "decay_epochs", "staircase", "lr_floor_fraction", "warmup",
    "warmup_epochs", "cold_epochs", "label_smoothing", "aux_loss_weight", "ema_momentum",
    "batch_norm_momentum", "dropout_rate", "global_batch_size", "per_replica_batch_size",
    "epochs", "color_distortion", "image_size", "precision",
}
OPTIMIZER_KNOBS = {
    "rmsprop": {"rmsprop_rho", "momentum", "rmsprop_initial_mean_square"},
    "sgd": {"momentum"},
    "adam": set(),
}


def keywords_of(name, monkeypatch):
    """The keyword arguments a recipe's get_config() passes to TrainConfig; for a recipe made
    from another (`finetune_augmented` is `finetune(...).replace(...)`), that one's."""
    seen = {}

    def recording(**kwargs):
        seen.update(kwargs)
        return TrainConfig(**kwargs)

    for recipe in configs.RECIPES:
        module = importlib.import_module(f"configs.{recipe}")
        if hasattr(module, "TrainConfig"):
            monkeypatch.setattr(module, "TrainConfig", recording)
    importlib.import_module(f"configs.{name}").get_config()
    return seen


@pytest.mark.parametrize("name", configs.RECIPES)
def test_every_recipe_sets_every_knob_itself(name, monkeypatch):
    keywords = keywords_of(name, monkeypatch)
    missing = COMMON_KNOBS | OPTIMIZER_KNOBS[keywords["optimizer"]]
    missing -= set(keywords)
    assert not missing, f"configs/{name}.py leaves {sorted(missing)} to TrainConfig's defaults"


@pytest.mark.parametrize("name", configs.RECIPES)
def test_every_recipe_docstring_says_what_it_follows(name):
    doc = importlib.import_module(f"configs.{name}").__doc__
    assert "python -m trainers.imagenet" in doc
    assert any(word in doc for word in ("reference", "paper", "follows no"))


def test_default_config_has_no_learning_rate():
    with pytest.raises(ConfigError, match="base_learning_rate must be > 0"):
        TrainConfig().validate()
    TrainConfig(base_learning_rate=0.1).validate()


def test_defaults_are_a_constant_rate_plain_sgd_and_no_augmentation():
    import tensorflow as tf

    from inception_keras.data import preprocessing
    from inception_keras.training.step import optimizers, schedules

    config = TrainConfig(base_learning_rate=0.1)
    schedule, text = schedules.make_schedule(config, global_batch_size=64, steps_per_epoch=10)
    rates = [float(schedule(tf.constant(s))) for s in (0, 1, 9, 10, 1000, 10**6)]
    assert rates == [pytest.approx(0.1)] * len(rates) and "no warm-up" in text
    optimizer = optimizers.make_optimizer(config, 0.1)
    assert type(optimizer).__name__ == "SGD" and optimizer.momentum == 0.0
    assert config.global_clipnorm is None and config.weight_decay == 0.0
    assert preprocessing.color_distortion_mode(config.color_distortion) == "none"


def test_every_choice_a_config_accepts_is_one_the_library_runs():
    import tensorflow as tf

    from configs import base
    from inception_keras.data import preprocessing
    from inception_keras.training.step import schedules

    jpeg = tf.io.encode_jpeg(tf.fill([12, 12, 3], tf.constant(128, tf.uint8)))
    for mode in base.COLOR_DISTORTIONS:
        out = preprocessing.preprocess_for_train(jpeg, 8, tf.constant([1, 2]),
                                                 color_distortion=mode)
        assert out.shape == (8, 8, 3), mode
    for warmup in base.WARMUPS:
        config = TrainConfig(base_learning_rate=0.1, warmup=warmup,
                             warmup_epochs=2.0 if warmup != "none" else 0.0).validate()
        schedule, _ = schedules.make_schedule(config, global_batch_size=8, steps_per_epoch=10)
        assert float(schedule(tf.constant(5))) > 0, warmup


def test_paper_scales_its_rate_from_the_papers_batch_of_32():
    from inception_keras.training.step import schedules

    config = configs.get_config("paper")
    one, _ = schedules.make_schedule(config, global_batch_size=config.per_replica_batch_size,
                                     steps_per_epoch=100)
    eight, text = schedules.make_schedule(config, global_batch_size=8 * 32, steps_per_epoch=100)
    assert one.peak_learning_rate == config.base_learning_rate  # one replica: the paper's step
    assert eight.peak_learning_rate == pytest.approx(8 * config.base_learning_rate)
    assert f"x 256/{config.per_replica_batch_size}" in text


def test_tpu_warmup_is_off_and_the_references_shape_is_one_override_away():
    config = configs.get_config("tpu")
    assert config.warmup == "none"
    warm = apply_overrides(config, ["warmup=tpu_reference", "warmup_epochs=7", "cold_epochs=2"])
    assert warm.validate().warmup == "tpu_reference"


@pytest.mark.parametrize("changes, message", [
    ({"warmup": "cosine"}, "unknown warmup"),
    ({"warmup_epochs": 5.0}, "need a warm-up shape"),
    ({"warmup": "linear"}, "needs warmup_epochs > 0"),
    ({"warmup": "linear", "warmup_epochs": 2.0, "cold_epochs": 1.0}, "tpu_reference only"),
    ({"warmup": "tpu_reference", "warmup_epochs": 0.25, "decay_epochs": 0.5}, "> 1"),
    ({"color_distortion": "fancy"}, "unknown color_distortion"),
    ({"decay_rate": 0.0}, "decay_rate must be > 0"),
    ({"lr_floor_fraction": 1.0}, "lr_floor_fraction"),
    ({"momentum": 1.0}, "momentum must be in"),
    ({"rmsprop_initial_mean_square": -1.0}, "rmsprop_initial_mean_square"),
    ({"stem": "5x5"}, "unknown stem '5x5': use one of factorized, 7x7"),
    ({"receptive_field": 224}, "unknown receptive_field 224: use one of 299, 151, 79"),
    ({"receptive_field": 151}, "set image_size=151 \\(image_size is 299\\)"),
    ({"variant": "table1", "aux_batch_norm": False}, "variant=table1 has its own"),
])
def test_recipe_knob_mistakes_are_one_line_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message) as error:
        TrainConfig(base_learning_rate=0.1, **changes).validate()
    assert "\n" not in str(error.value)


# Table 3's rows top to bottom, then Table 2's, with the one change each makes to `paper` or to
# the row above it (configs/paper_v2*.py, paper_res*.py say why).
PAPER_ROW_CHANGES = [
    ("paper_v2", "paper_v2_rmsprop", {"optimizer": ("sgd", "rmsprop")}),
    ("paper_v2_rmsprop", "paper_v2_smoothing", {"label_smoothing": (0.0, 0.1)}),
    ("paper_v2_smoothing", "paper_v2_factorized", {"stem": ("7x7", "factorized")}),
    ("paper_v2_factorized", "paper", {"aux_batch_norm": (False, True)}),
    ("paper_res151", "paper", {"receptive_field": (151, 299), "image_size": (151, 299)}),
    ("paper_res79", "paper", {"receptive_field": (79, 299), "image_size": (79, 299)}),
]


@pytest.mark.parametrize("row, above, changes", PAPER_ROW_CHANGES)
def test_each_paper_row_is_one_documented_change_from_the_next(row, above, changes):
    from inception_keras.paper import PAPER_RECIPES, target_line

    mine, theirs = (configs.get_config(name).validate().to_dict() for name in (row, above))
    changed = {key: (mine[key], theirs[key]) for key in mine
               if mine[key] != theirs[key] and key != "name"}
    assert changed == changes
    assert mine["name"] == row and row in PAPER_RECIPES
    assert target_line(row) in importlib.import_module("trainers.imagenet")._EPILOG
    assert mine["momentum"] == 0.9  # SGD's momentum before the RMSProp row, RMSprop's after


def test_readme_recipe_table_lists_each_paper_row_with_its_number():
    from conftest import REPO
    from inception_keras.paper import TABLE2, TABLE3

    readme = open(os.path.join(REPO, "README.md")).read()
    for row in TABLE3 + TABLE2[1:]:
        number = row.top1_error if row in TABLE3 else 100 - row.top1_error
        line = next(line for line in readme.splitlines()
                    if line.startswith(f"| `{row.recipe}`") and row.recipe != "paper"
                    or line.startswith("| `paper` (again)") and row.recipe == "paper")
        assert f"{number:.1f}%" in line, line
