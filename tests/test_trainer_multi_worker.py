"""`multi_worker`: two real trainer processes on localhost ports (TF_CONFIG), with no workaround:
2 epochs validating after each, then the final evaluation; only the chief exports."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_exports(tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    temp = tmp_path / "tmp"
    temp.mkdir()
    command = [sys.executable, "-m", "trainers.imagenet", "--strategy", "multi_worker",
               "--model_dir", str(tmp_path / "run"), "--export_dir", str(tmp_path / "exports"),
               "--batch_size", "16", "--epochs", "2", "--steps_per_epoch", "3",
               "--set", "image_size=75", "--set", "depth_multiplier=0.125",
               "--set", "eval_steps=2", "--set", "log_every_steps=1"]
    processes, logs = [], []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2",
                   TMPDIR=str(temp))
        log = open(tmp_path / f"worker{index}.log", "w+")
        logs.append(log)
        processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                          stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=540) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    assert codes == [0, 0], "\n=====\n".join(o[-3000:] for o in outputs)
    chief, worker = outputs
    assert "CollectiveAllReduceStrategy, 2 replica(s)" in chief
    for epoch in (1, 2):
        assert re.search(rf"epoch {epoch}/2 done .*val_top1 .* on 32 images", chief), chief[-3000:]
    assert f"exported the model to {tmp_path / 'exports' / 'inception_v3' / '1'}" in chief
    assert "worker 1: done (the chief exports)" in worker and "exported" not in worker
    # one export, one set of checkpoints (the chief's); the worker's temp checkpoints are gone
    assert sorted(os.listdir(tmp_path / "exports" / "inception_v3")) == ["1"]
    assert (tmp_path / "run" / "checkpoints" / "ckpt-6.index").exists()
    assert not [name for name in os.listdir(temp) if name.startswith("inception_worker")]
    # both workers evaluated the same synchronised model
    final = [line for line in chief.splitlines() if line.startswith("final evaluation")]
    assert final and final[0] in worker
