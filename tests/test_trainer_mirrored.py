"""`--strategy mirrored --cpu_devices 2` through the CLI, from a working directory with relative
--model_dir/--export_dir: 3 epochs validating after each, killed
in epoch 2 with kill -9, resumed by the same command, stopped in epoch 2 again with SIGTERM (a
preemption notice) and resumed once more to the end.

kill -9 loses the steps since the last checkpoint (the end of epoch 1 here); SIGTERM saves at
the step in flight, and the rerun resumes there. Each validation scores the same images.
"""

import re
import signal

import pytest

from conftest import run_trainer, signal_when, start_trainer

STEPS_PER_EPOCH, EPOCHS, EVAL_BATCHES, BATCH = 4, 3, 2, 16
ARGS = ["--strategy", "mirrored", "--cpu_devices", "2", "--model_dir", "run",
        "--export_dir", "exports", "--batch_size", str(BATCH), "--epochs", str(EPOCHS),
        "--steps_per_epoch", str(STEPS_PER_EPOCH), "--set", "image_size=75",
        "--set", "depth_multiplier=0.125", "--set", "ema_momentum=0.9",
        "--set", f"eval_steps={EVAL_BATCHES}", "--set", "log_every_steps=1",
        "--set", "image_summaries=false"]


def start_and_signal(tmp_path, sig, when, log_name):
    """Runs the trainer from `tmp_path` until its log shows `when`, sends `sig`; returns
    (code, log)."""
    process = start_trainer(tmp_path, ARGS, tmp_path / log_name)
    return signal_when(process, tmp_path / log_name, when, sig)


def resumed_at(output):
    match = re.search(r"resumed from epoch (\d+) step (\d+) \(global step (\d+)\)", output)
    assert match, output[-3000:]
    return tuple(map(int, match.groups()))


def validations(output):
    """(epoch, top-1, images) of each epoch line with a validation."""
    return [(int(e), float(t), int(n)) for e, t, n in re.findall(
        r"epoch (\d+)/\d+ done .*val_top1 ([0-9.]+) .* on (\d+) images", output)]


@pytest.mark.slow
def test_kill_9_then_sigterm_in_epoch_2_and_the_same_command_resumes_each_time(tmp_path):
    total = EPOCHS * STEPS_PER_EPOCH
    in_epoch_2 = f"epoch 2/{EPOCHS} step 2/{STEPS_PER_EPOCH}"
    # kill -9 in epoch 2: nothing is saved, the newest checkpoint is epoch 1's end
    code, first = start_and_signal(tmp_path, signal.SIGKILL, in_epoch_2, "first.log")
    assert code == -signal.SIGKILL, first[-3000:]
    assert [v[0] for v in validations(first)] == [1]
    assert not (tmp_path / "exports" / "inception_v3").exists()  # no version yet

    # the same command resumes there; SIGTERM in its epoch 2 saves the step in flight
    code, second = start_and_signal(tmp_path, signal.SIGTERM, in_epoch_2, "second.log")
    assert resumed_at(second) == (1, STEPS_PER_EPOCH, STEPS_PER_EPOCH), second[-3000:]
    assert code == 128 + signal.SIGTERM, second[-3000:]
    match = re.search(r"SIGTERM: saved \S+ at step (\d+); rerun the same command to resume",
                      second)
    assert match, second[-3000:]
    saved_step = int(match.group(1))
    assert STEPS_PER_EPOCH + 2 <= saved_step < 2 * STEPS_PER_EPOCH  # mid epoch 2, not its start

    # ... and the third run resumes at that step, validates twice more and exports
    code, output = run_trainer(tmp_path, *ARGS, timeout=500)
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    epoch, in_epoch, step = resumed_at(output)
    assert step == saved_step and epoch == 2 and in_epoch == saved_step - STEPS_PER_EPOCH
    assert f"training done: {total - step} steps" in output
    seen = validations(output)
    assert [v[0] for v in seen] == [2, 3]
    assert {v[2] for v in seen + validations(first)} == {EVAL_BATCHES * BATCH}  # same images
    assert "final evaluation (EMA weights)" in output
    version_1 = tmp_path / "exports" / "inception_v3" / "1"
    assert f"exported the model to {version_1}" in output

    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints"))
    assert state.model_checkpoint_path.endswith(f"ckpt-{total}")
    reader = tf.train.load_checkpoint(state.model_checkpoint_path)
    counter = [n for n in reader.get_variable_to_shape_map() if n.startswith("counters/step")]
    assert counter and int(reader.get_tensor(counter[0])) == total

    # --export_only adds version 2 and leaves version 1 as it was
    saved_pb = (version_1 / "saved_model.pb").read_bytes()
    code, again = run_trainer(tmp_path, *ARGS, "--export_only", timeout=300)
    assert code == 0, again[-3000:]
    assert f"exported the model to {tmp_path / 'exports' / 'inception_v3' / '2'}" in again
    assert (version_1 / "saved_model.pb").read_bytes() == saved_pb
