"""Preemption inside its grace period, on one device, from a working directory with relative
paths: three runs of the same command.

1. `steps_per_execution=50` but `max_call_seconds=1`: a SIGTERM during training waits for the
   call in flight, which the time bound cut short, so the checkpoint is mid-call-length.
2. The rerun resumes there; SIGTERM during the validation of epoch 1: the epoch's checkpoint was
   written before the validation, the process exits 143.
3. The rerun validates epoch 1 again, trains epoch 2, evaluates and exports.
"""

import re
import signal

import pytest
import tensorflow as tf

from conftest import run_trainer, signal_when, start_trainer

STEPS_PER_EPOCH, EPOCHS, STEPS_PER_EXECUTION = 60, 2, 50
ARGS = ["--model_dir", "run", "--export_dir", "exports", "--batch_size", "16",
        "--epochs", str(EPOCHS), "--steps_per_epoch", str(STEPS_PER_EPOCH),
        "--set", "image_size=75", "--set", "depth_multiplier=0.125",
        "--set", f"steps_per_execution={STEPS_PER_EXECUTION}", "--set", "max_call_seconds=1",
        "--set", "log_every_steps=1", "--set", "image_summaries=false"]


def progress_steps(log):
    return [int(step) for step in re.findall(rf"step (\d+)/{STEPS_PER_EPOCH} ", log)]


def checkpoint_steps(run):
    state = tf.train.get_checkpoint_state(str(run / "checkpoints"))
    return sorted(int(path.rsplit("-", 1)[1]) for path in state.all_model_checkpoint_paths)


@pytest.mark.slow
def test_sigterm_is_answered_within_a_time_bounded_call_and_during_validation(tmp_path):
    run = tmp_path / "run"
    # 1. SIGTERM once three calls finished: the first two run one step each (the first traces,
    # the second is measured), the third is sized by the measured step time
    first = start_trainer(tmp_path, ARGS, tmp_path / "first.log")
    code, output = signal_when(first, tmp_path / "first.log",
                               lambda log: len(progress_steps(log)) >= 3, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, output[-3000:]
    saved = int(re.search(r"SIGTERM: saved \S+ at step (\d+); rerun the same command", output)
                .group(1))
    calls = progress_steps(output)
    assert calls[:2] == [1, 2] and saved == calls[-1], output[-3000:]
    sizes = [b - a for a, b in zip(calls, calls[1:])]
    # without the time bound the third call would have run all 50 steps (to step 52)
    assert all(1 <= size < STEPS_PER_EXECUTION for size in sizes) and saved < 2 + 50, sizes
    assert checkpoint_steps(run) == [saved]

    # 2. the same command resumes at that step; SIGTERM during epoch 1's validation
    second = start_trainer(tmp_path, ARGS, tmp_path / "second.log")
    code, output = signal_when(second, tmp_path / "second.log",
                               f"epoch 1/{EPOCHS}: validating the weights of step "
                               f"{STEPS_PER_EPOCH}", signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert f"resumed from epoch 1 step {saved} (global step {saved})" in output
    assert "SIGTERM during the validation of epoch 1: its checkpoint (step 60) was saved" in output
    assert "epoch 1/2 done" not in output  # the validation did not finish
    assert checkpoint_steps(run)[-1] == STEPS_PER_EPOCH
    assert "Traceback" not in output

    # 3. the same command validates epoch 1 first, then trains epoch 2 and exports
    code, output = run_trainer(tmp_path, *ARGS)
    assert code == 0, output[-3000:]
    assert "epoch 1/2 validation (interrupted before, run again): val_top1" in output
    assert re.search(r"epoch 2/2 done .*val_top1 [0-9.]+ +val_top5 [0-9.]+ +on 500 images",
                     output), output[-3000:]
    assert f"training done: {STEPS_PER_EPOCH} steps" in output
    assert f"exported the model to {tmp_path / 'exports' / 'inception_v3' / '1'}" in output
    assert checkpoint_steps(run)[-1] == EPOCHS * STEPS_PER_EPOCH
