"""Every user mistake of `python -m trainers.imagenet` is one `error:` line and exit code 2.

Each runs from a working directory with relative --model_dir/--export_dir, as users do."""

import json

import pytest

from conftest import cli_env, run_module


def run_trainer(args, tmp_path, env=None, timeout=180):
    return run_module("trainers.imagenet", "--model_dir", "run", "--export_dir", "exports", *args,
                      cwd=tmp_path, timeout=timeout, env=cli_env(TF_CPP_MIN_LOG_LEVEL="3",
                                                                 **(env or {})))


def error_lines(result):
    """The `error:` lines of stderr; asserts exit 2 and no traceback anywhere."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("args, expected", [
    (["--strategy", "gpu"], "unknown strategy 'gpu': use one of tpu, mirrored, multi_worker"),
    (["--config", "resnet"], "unknown config 'resnet'"),
    (["--set", "image_sise=96"], "did you mean image_size"),
    (["--set", "image_size=big"], "expected int"),
    (["--precision", "fp8"], "unknown precision"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--epochs", "two"], "invalid int value"),
])
def test_config_mistakes_fail_fast(args, expected, tmp_path):
    line = error_lines(run_trainer(args, tmp_path, timeout=60))
    assert expected in line


def test_help_explains_the_defaults(tmp_path):
    result = run_trainer(["--help"], tmp_path, timeout=60)
    assert result.returncode == 0
    for words in ("GLOBAL batch size", "smoke", "--set KEY=VALUE", "tpu | mirrored"):
        assert words in result.stdout


@pytest.mark.slow
def test_tpu_without_tpu_says_what_was_looked_for(tmp_path):
    line = error_lines(run_trainer(["--strategy", "tpu"], tmp_path))
    assert "no TPU found; looked for TPU 'local' with TPUClusterResolver" in line


@pytest.mark.slow
def test_mirrored_without_gpus(tmp_path):
    line = error_lines(run_trainer(["--strategy", "mirrored"], tmp_path))
    assert "no GPU found" in line and "--cpu_devices 2" in line


@pytest.mark.slow
def test_missing_data(tmp_path):
    line = error_lines(run_trainer(
        ["--dataset", "imagenet_tfrecord", "--data_dir", "nowhere"], tmp_path))
    assert str(tmp_path / "nowhere") in line  # relative: the working directory's


@pytest.mark.slow
def test_batch_not_divisible_by_replicas(tmp_path):
    line = error_lines(run_trainer(
        ["--strategy", "mirrored", "--cpu_devices", "2", "--batch_size", "33"], tmp_path))
    assert "not divisible by the 2 replicas" in line and "--batch_size 32" in line


@pytest.mark.slow
def test_resume_with_conflicting_config(tmp_path):
    from configs import get_config

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    saved = get_config("smoke").replace(image_size=128, global_batch_size=32, steps_per_epoch=93,
                                        model_dir=str(run_dir))
    (run_dir / "config.json").write_text(json.dumps(saved.to_dict()))
    line = error_lines(run_trainer([], tmp_path))
    assert "image_size 128 -> 96" in line and "--set image_size=128" in line
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_export_only_without_a_run(tmp_path):
    line = error_lines(run_trainer(["--export_only"], tmp_path))
    assert "has no config.json" in line


@pytest.mark.slow
def test_unwritable_export_dir_is_refused_before_the_first_step(tmp_path):
    (tmp_path / "afile").write_text("a regular file, not a folder")
    result = run_trainer(["--export_dir", "afile/exports", "--steps_per_epoch", "1",
                          "--set", "image_size=75", "--set", "depth_multiplier=0.125"], tmp_path)
    line = error_lines(result)
    assert f"--export_dir {tmp_path / 'afile' / 'exports'} is not a writable folder" in line
    assert "step 1/1" not in result.stdout and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("assignment", ["stem=7x7", "aux_batch_norm=false", "receptive_field=79"])
def test_eval_only_of_a_run_keeps_its_networks_switches(assignment, tmp_path):
    from configs import ConfigError, get_config
    from trainers.imagenet import parse_flags, run_config_from_flags

    (tmp_path / "config.json").write_text(get_config("paper").to_json())
    flags = parse_flags(["--eval_only", "--model_dir", str(tmp_path), "--set", assignment])
    key = assignment.split("=")[0]
    with pytest.raises(ConfigError, match=f"so {key} cannot change"):
        run_config_from_flags(flags, str(tmp_path))
