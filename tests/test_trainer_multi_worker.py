"""`multi_worker`: two real trainer processes on localhost ports (TF_CONFIG), from a working
directory with a relative, shared --model_dir, with restarts, in one chain:

1. worker 1 (not the chief) is killed with SIGKILL in epoch 2: the chief stops within seconds
   with one `error:` line and the retryable exit status 170, no traceback;
2. both restarted with the same command: the dead worker's scratch folder is removed, both
   resume at epoch 1's checkpoint, validate, finish; only the chief exports;
3. each worker given its own model_dir (per-host disks), one of which holds the run: both stop
   before training with the line naming the lowest and highest restored step.
"""

import json
import os
import re
import signal
import socket

import pytest

from conftest import cli_env, signal_when, start_trainer

STEPS_PER_EPOCH = 4
ARGS = ["--strategy", "multi_worker", "--export_dir", "exports", "--batch_size", "16",
        "--epochs", "2", "--steps_per_epoch", str(STEPS_PER_EPOCH), "--set", "image_size=75",
        "--set", "depth_multiplier=0.125", "--set", "eval_steps=2", "--set", "log_every_steps=1",
        "--set", "image_summaries=false"]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(tmp_path, name, model_dirs=("run", "run")):
    """Both workers of a fresh cluster; [(process, log path)], the chief first."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    started = []
    for index, model_dir in enumerate(model_dirs):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = cli_env(TF_CONFIG=json.dumps(tf_config), TMPDIR=str(tmp_path / "tmp"))
        log = tmp_path / f"{name}-worker{index}.log"
        started.append((start_trainer(tmp_path, ["--model_dir", model_dir, *ARGS], log, env),
                        log))
    return started


def finish(started, timeout=540):
    """(exit statuses, logs) once both processes ended."""
    codes = []
    for process, _ in started:
        try:
            codes.append(process.wait(timeout=timeout))
        finally:
            if process.poll() is None:
                process.kill()
    return codes, [log.read_text() for _, log in started]


def scratch_dirs(tmp_path):
    return [n for n in os.listdir(tmp_path / "tmp") if n.startswith("inception_keras_worker-")]


@pytest.mark.slow
def test_lost_worker_restart_and_per_host_model_dirs(tmp_path):
    (tmp_path / "tmp").mkdir()
    # 1. SIGKILL worker 1 in epoch 2 (epoch 1's checkpoint exists)
    (chief, chief_log), (worker, worker_log) = start_workers(tmp_path, "first")
    _, worker_output = signal_when(worker, worker_log, f"epoch 2/2 step 1/{STEPS_PER_EPOCH}",
                                   signal.SIGKILL)
    code, output = finish([(chief, chief_log)], timeout=120)[0][0], chief_log.read_text()
    assert code == 170, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lost contact with another worker" in errors[0], output[-3000:]
    assert "restart every worker with the same command" in errors[0]
    assert "Traceback" not in output
    assert len(scratch_dirs(tmp_path)) == 1  # the killed worker's: nobody could remove it

    # 2. the same command on both: resume at epoch 1's end, finish, only the chief exports
    codes, (chief_output, worker_output) = finish(start_workers(tmp_path, "second"))
    assert codes == [0, 0], "\n=====\n".join(o[-3000:] for o in (chief_output, worker_output))
    for output in (chief_output, worker_output):
        assert f"resumed from epoch 1 step {STEPS_PER_EPOCH} (global step {STEPS_PER_EPOCH})" \
            in output
        assert re.search(r"epoch 2/2 done .*val_top1 .* on 32 images", output), output[-3000:]
    assert "CollectiveAllReduceStrategy, 2 replica(s)" in chief_output
    export = tmp_path / "exports" / "inception_v3"
    assert f"exported the model to {export / '1'}" in chief_output
    assert "worker 1: done (the chief exports)" in worker_output
    assert "exported" not in worker_output
    assert sorted(os.listdir(export)) == ["1"]
    assert (tmp_path / "run" / "checkpoints" / f"ckpt-{2 * STEPS_PER_EPOCH}.index").exists()
    assert scratch_dirs(tmp_path) == []  # the stale one removed, the new one removed at exit
    final = [line for line in chief_output.splitlines() if line.startswith("final evaluation")]
    assert final and final[0] in worker_output  # both scored the same synchronised model

    # 3. per-host model_dirs: the chief's holds the run, worker 1's is empty
    codes, outputs = finish(start_workers(tmp_path, "third", model_dirs=("run", "run_host1")))
    assert codes == [2, 2], "\n=====\n".join(o[-3000:] for o in outputs)
    for output in outputs:
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, output[-3000:]
        assert (f"the workers restored different steps (lowest 0, highest "
                f"{2 * STEPS_PER_EPOCH})") in errors[0]
        assert "model_dir must be storage every worker sees" in errors[0]
        assert not re.search(r"epoch \d/2 step", output)  # no step trained
