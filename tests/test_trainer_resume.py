"""Kill -9 after the first checkpoint, rerun the same command: it resumes (weights, optimizer and
EMA state, epoch and step) and finishes; every checkpoint left behind is readable; a later
`--export_only` adds a new export version and never overwrites the first."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS_PER_EPOCH, EPOCHS = 6, 3


def trainer_command(tmp_path, *extra):
    return [sys.executable, "-m", "trainers.imagenet",
            "--model_dir", str(tmp_path / "run"), "--export_dir", str(tmp_path / "exports"),
            "--batch_size", "16", "--epochs", str(EPOCHS),
            "--steps_per_epoch", str(STEPS_PER_EPOCH),
            "--set", "image_size=75", "--set", "depth_multiplier=0.125",
            "--set", "checkpoint_every_steps=2", "--set", "ema_momentum=0.9",
            "--set", "eval_steps=2", "--set", "log_every_steps=1", *extra]


def env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def read_all_tensors(prefix):
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            assert np.all(np.isfinite(value)), name
    return reader


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_and_finishes(tmp_path):
    index = tmp_path / "run" / "checkpoints" / "checkpoint"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(trainer_command(tmp_path), cwd=REPO, env=env(), stdout=log,
                                 stderr=subprocess.STDOUT)
        deadline = time.time() + 400
        while not index.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-3000:]
    assert not (tmp_path / "exports").exists()

    second = subprocess.run(trainer_command(tmp_path), cwd=REPO, env=env(), capture_output=True,
                            text=True, timeout=500)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-4000:]
    match = re.search(r"resumed from epoch (\d+) step (\d+) \(global step (\d+)\)", output)
    assert match, output[-3000:]
    epoch, in_epoch, step = map(int, match.groups())
    total = EPOCHS * STEPS_PER_EPOCH
    assert 2 <= step < total and step % 2 == 0
    assert (epoch - 1) * STEPS_PER_EPOCH + in_epoch == step
    assert f"training done: {total - step} steps" in output
    assert "final evaluation (EMA weights)" in output
    version_1 = tmp_path / "exports" / "inception_v3" / "1"
    assert f"exported the model to {version_1}" in output

    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints"))
    assert state.model_checkpoint_path.endswith(f"ckpt-{total}")
    for prefix in state.all_model_checkpoint_paths:
        reader = read_all_tensors(prefix)
    iterations = [n for n in reader.get_variable_to_shape_map() if "iteration" in n]
    assert iterations and int(reader.get_tensor(iterations[0])) == total

    saved_pb = (version_1 / "saved_model.pb").read_bytes()
    again = subprocess.run(trainer_command(tmp_path, "--export_only"), cwd=REPO, env=env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert f"exported the model to {tmp_path / 'exports' / 'inception_v3' / '2'}" in again.stdout
    assert (version_1 / "saved_model.pb").read_bytes() == saved_pb
