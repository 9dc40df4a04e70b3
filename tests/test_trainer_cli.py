"""Every user mistake of `python -m trainers.imagenet` is one `error:` line and exit code 2."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_trainer(args, tmp_path, env=None, timeout=180):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    environment.pop("TF_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "trainers.imagenet", "--model_dir", str(tmp_path / "run"),
         "--export_dir", str(tmp_path / "exports"), *args],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)


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
        ["--dataset", "imagenet_tfrecord", "--data_dir", str(tmp_path / "nowhere")], tmp_path))
    assert str(tmp_path / "nowhere") in line


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
