"""Recipes, `--set` overrides and resume-conflict rules (no TensorFlow needed, fast)."""

import re

import pytest

import configs
from configs.base import ConfigError, TrainConfig, apply_overrides


@pytest.mark.parametrize("name", configs.RECIPES)
def test_every_recipe_builds_and_validates(name):
    config = configs.get_config(name)
    assert isinstance(config, TrainConfig)
    assert config.name == name
    config.validate()


def test_set_parses_by_field_type():
    config = apply_overrides(configs.get_config("smoke"), [
        "image_size=128", "depth_multiplier=0.5", "ema_momentum=0.99", "include_aux=false",
        "data_dir=/tmp/x", "global_clipnorm=none"])
    assert config.image_size == 128 and isinstance(config.image_size, int)
    assert config.depth_multiplier == 0.5
    assert config.ema_momentum == 0.99
    assert config.include_aux is False
    assert config.data_dir == "/tmp/x"
    assert config.global_clipnorm is None


def test_set_unknown_key_suggests_close_match():
    with pytest.raises(ConfigError, match="did you mean image_size"):
        apply_overrides(TrainConfig(), ["image_sise=96"])


@pytest.mark.parametrize("item, message", [
    ("image_size=big", "expected int"),
    ("include_aux=maybe", "expected true/false"),
    ("image_size", "expected key=value"),
])
def test_set_bad_values_are_config_errors(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), [item])


def test_unknown_recipe_lists_the_recipes():
    with pytest.raises(ConfigError, match="smoke, paper, tpu, gpu"):
        configs.get_config("resnet")


def test_config_file_path(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("from configs import get_config as _g\n"
                    "def get_config():\n    return _g('smoke').replace(name='mine', epochs=1)\n")
    config = configs.get_config(str(path))
    assert (config.name, config.epochs) == ("mine", 1)
    (tmp_path / "bad.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="no get_config"):
        configs.get_config(str(tmp_path / "bad.py"))


@pytest.mark.parametrize("changes, message", [
    ({"strategy": "gpu"}, "unknown strategy"),
    ({"precision": "fp8"}, "unknown precision"),
    ({"global_batch_size": 0, "per_replica_batch_size": 0}, "set a batch size"),
    ({"ema_momentum": 1.5}, "ema_momentum"),
])
def test_validate_rejects(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()


def test_config_round_trips_through_json():
    import json

    config = configs.get_config("tpu")
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config


def test_the_tfjob_example_runs_a_valid_multi_worker_command():
    """examples/tfjob.yaml: its command is one the trainer accepts, on a shared model_dir, and its
    restart policy retries exactly the retryable exit statuses the trainer uses."""
    import json
    import os

    from inception_keras.training import errors
    from trainers.imagenet import config_from_flags, parse_flags

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                        "tfjob.yaml")
    text = open(path).read()
    command = json.loads(text.split("command:", 1)[1].splitlines()[0].strip())
    assert command[:3] == ["python", "-m", "trainers.imagenet"]
    config = config_from_flags(parse_flags(command[3:]))
    assert config.strategy == "multi_worker" and config.model_dir.startswith("gs://")
    assert "restartPolicy: ExitCode" in text  # Kubeflow retries 128-255, fails 1-127
    assert 128 <= errors.EXIT_PEER_LOST <= 255 and 128 <= errors.EXIT_PREEMPTED <= 255
    assert errors.EXIT_USER_ERROR < 128 and errors.EXIT_NON_FINITE < 128


@pytest.mark.parametrize("assignment, message", [
    ("export_formats=tflite", "export_formats='tflite': use a comma-separated list of savedmodel"),
    ("keep_best=val_top5", "unknown keep_best 'val_top5'"),
    ("export=best", "export=best needs a best checkpoint: --set keep_best=val_top1"),
    ("profile_steps=5", "expected A,B"),
    ("profile_steps=9,3", "need 1 <= A <= B"),
    ("lr_schedule=linear", "unknown lr_schedule 'linear'"),
    ("decoupled_weight_decay=-0.1", "decoupled_weight_decay must be >= 0, got -0.1"),
    ("min_agreement_int8=1.5", "min_agreement_int8 must be in [0, 1], got 1.5"),
    ("min_agreement_float=-0.1", "min_agreement_float must be in [0, 1], got -0.1"),
    ("no_decay_on=gamma", "no_decay_on='gamma'"),
    ("max_call_seconds=0", "max_call_seconds must be > 0"),
    ("augment=autoaugment", "unknown augment 'autoaugment'"),
    ("mixup_alpha=-1", "mixup_alpha must be >= 0"),
    ("augment_magnitude=11", "augment_magnitude must be in [0, 10]"),
    ("histogram_every=-2", "histogram_every must be >= 0"),
    ("head_lr_multiplier=0", "head_lr_multiplier must be > 0"),
    ("on_nonfinite=skip", "unknown on_nonfinite 'skip': use one of stop, recover"),
    ("max_recoveries=-1", "max_recoveries must be >= 0"),
    ("fault_nan_batches=0", "fault_nan_batches='0': expected batch numbers >= 1"),
    ("fault_nan_batches=5;9", "fault_nan_batches='5;9': expected batch numbers >= 1"),
])
def test_each_new_key_refuses_a_wrong_value_with_one_line(assignment, message):
    from configs import ConfigError, apply_overrides, get_config

    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_overrides(get_config("smoke"), [assignment]).validate()


def test_adamw_decays_by_keras_default_unless_the_config_sets_the_decay():
    from configs.base import ADAMW_DEFAULT_DECAY

    smoke = configs.get_config("smoke")
    assert ADAMW_DEFAULT_DECAY == 0.004  # keras.optimizers.AdamW(weight_decay=0.004)
    assert apply_overrides(smoke, ["optimizer=adamw"]).validate().decoupled_decay == 0.004
    explicit = apply_overrides(smoke, ["optimizer=adamw", "decoupled_weight_decay=0"]).validate()
    assert explicit.decoupled_decay == 0.0  # an explicit 0 stays 0: plain Adam
    assert apply_overrides(smoke, ["decoupled_weight_decay=0.05"]).decoupled_decay == 0.05
    assert smoke.decoupled_weight_decay is None and smoke.decoupled_decay == 0.0  # adam: off
    # a config saved before the default existed (0.0 written out) still loads as it ran
    saved = TrainConfig.from_dict({**smoke.to_dict(), "decoupled_weight_decay": 0.0})
    assert saved.validate().decoupled_decay == 0.0


def test_the_long_recipes_recover_from_a_non_finite_loss_and_the_others_stop():
    recovering = {name for name in configs.RECIPES
                  if configs.get_config(name).on_nonfinite == "recover"}
    paper_rows = {name for name in configs.RECIPES if name.startswith("paper")}
    assert paper_rows >= {"paper", "paper_v2", "paper_res79"}  # the paper's ladder: long runs
    assert recovering == {"tpu", "gpu"} | paper_rows
    assert TrainConfig().on_nonfinite == "stop" and TrainConfig().max_recoveries == 3


def test_the_run_summary_says_what_augmentation_runs():
    from inception_keras.training.records.reports import augmentation_text

    assert augmentation_text(configs.get_config("finetune")) == "crop and flip"
    tpu = configs.get_config("tpu")
    assert augmentation_text(tpu) == "crop and flip, colour distortion tpu_fast"
    everything = apply_overrides(configs.get_config("smoke"), [
        "augment=randaugment", "augment_layers=3", "augment_magnitude=7", "random_erasing=0.25",
        "mixup_alpha=0.2", "cutmix_alpha=1"])
    assert augmentation_text(everything) == (
        "crop and flip, randaugment (3 ops at magnitude 7), random erasing 0.25, mixup alpha 0.2, "
        "cutmix alpha 1")
    assert augmentation_text(apply_overrides(everything, ["augment=augmix", "random_erasing=0",
                                                          "mixup_alpha=0", "cutmix_alpha=0"])) == (
        "crop and flip, augmix (magnitude 7)")
