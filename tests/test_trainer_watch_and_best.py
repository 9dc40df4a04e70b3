"""Watching a run train and keeping its best checkpoint.

- CLI, from a working directory: a tiny training run (3 epochs, profiler and histograms on) and
  `--eval_only --watch` started beside it: the trainer is paused (SIGSTOP) once its first
  checkpoint exists, and the watcher evaluates that checkpoint while the run is unfinished; then
  it evaluates the run's other checkpoints, writes only its own files and exits when the run is
  finished; run again on the finished run after one checkpoint's data was deleted, it skips that
  one and evaluates the others.
- In-process: `keep_best=val_top1` keeps the best validation's checkpoint while rotation deletes
  the old ones, and `export=best` evaluates and exports that one, saying why.
"""

import json
import os
import signal
import time

import keras
import pytest
import tensorflow as tf

from conftest import run_trainer, start_trainer

EPOCHS, STEPS = 3, 2
TINY = ["--model_dir", "run", "--export_dir", "exports", "--batch_size", "8",
        "--epochs", str(EPOCHS), "--steps_per_epoch", str(STEPS), "--set", "image_size=75",
        "--set", "depth_multiplier=0.125", "--set", "eval_steps=1",
        "--set", "image_summaries=false", "--set", "keep_checkpoints=5"]


def tensorboard_tags(folder):
    tags = set()
    for name in tf.io.gfile.listdir(folder):
        if name.startswith("events."):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
                tags.update(value.tag for value in event.summary.value)
    return tags


def wait_until(condition, timeout):
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.1)
    return condition()


@pytest.mark.slow
def test_watcher_follows_a_concurrent_run_and_skips_a_deleted_checkpoint(tmp_path):
    from inception_keras.training.records.run_state import RunState

    run = tmp_path / "run"
    trainer = start_trainer(tmp_path, [*TINY, "--set", "profile_steps=2,3",
                                       "--set", "histogram_every=2"], tmp_path / "train.log")
    watcher = start_trainer(tmp_path, ["--eval_only", "--watch", "--model_dir", "run",
                                       "--set", "watch_timeout=300"], tmp_path / "watch.log")
    try:
        # the trainer paused once its first checkpoint exists: the watcher scores it meanwhile
        assert wait_until((run / "checkpoints" / "checkpoint").exists, 400)
        trainer.send_signal(signal.SIGSTOP)
        try:
            scored_while_paused = wait_until((run / "watch_results.json").exists, 240)
            unfinished = RunState.load(str(run)).trained_step is None
        finally:
            trainer.send_signal(signal.SIGCONT)
        code = watcher.wait(timeout=600)
    finally:
        trained = trainer.wait(timeout=600)
        if watcher.poll() is None:
            watcher.kill()
    watch = (tmp_path / "watch.log").read_text()
    assert scored_while_paused and unfinished, watch[-3000:]
    assert trained == 0, (tmp_path / "train.log").read_text()[-3000:]
    assert code == 0, watch[-3000:]
    steps = [STEPS * epoch for epoch in range(1, EPOCHS + 1)]
    results = json.loads((run / "watch_results.json").read_text())
    assert [r["step"] for r in results] == steps
    assert all(r["examples"] == 8 and 0 <= r["top1"] <= r["top5"] <= 1 for r in results)
    assert "the run is finished and its last step is evaluated; 3 checkpoint(s)" in watch
    # its own TensorBoard run; nothing of its own in the trainer's files
    assert {"metrics/top1", "metrics/cross_entropy"} <= tensorboard_tags(
        run / "tensorboard" / "watch")
    assert sorted(os.listdir(run / "checkpoints")) == sorted(
        ["checkpoint"] + [f"ckpt-{s}.{ext}" for s in steps
                          for ext in ("index", "data-00000-of-00001")])
    # the trainer's profiler trace and histograms
    traces = [f for _, _, files in os.walk(run / "tensorboard" / "plugins" / "profile")
              for f in files if f.endswith(".xplane.pb")]
    assert traces, "no profiler trace"
    tags = tensorboard_tags(run / "tensorboard" / "train")
    assert "gradients/norms" in tags and "gradients/global_norm" in tags
    assert any(tag.startswith("weights/") for tag in tags)

    # a second watcher on the finished run: one checkpoint's data vanished (rotated away)
    (run / "watch_results.json").unlink()
    (run / "checkpoints" / f"ckpt-{steps[1]}.data-00000-of-00001").unlink()
    code, watch = run_trainer(tmp_path, "--eval_only", "--watch", "--model_dir", "run",
                              "--set", "watch_timeout=60")
    assert code == 0, watch[-3000:]
    assert f"skipped step {steps[1]}:" in watch and "Traceback" not in watch
    results = json.loads((run / "watch_results.json").read_text())
    assert [r["step"] for r in results] == [steps[0], steps[2]]


@pytest.fixture
def restore_dtype_policy():
    policy = keras.mixed_precision.dtype_policy()
    yield
    keras.mixed_precision.set_dtype_policy(policy)


@pytest.mark.slow
def test_best_checkpoint_survives_rotation_and_is_what_export_best_exports(
        tmp_path, restore_dtype_policy):
    from configs import get_config
    from inception_keras.training.loop import checkpoints, progress
    from inception_keras.training import entries
    from inception_keras.training.loop.actions import Checkpointer, KeepBest
    from inception_keras.training.loop.preemption import SigtermWatch
    from inception_keras.training.records.run_state import RunRecord
    from inception_keras.training.setup import setup_run
    from inception_keras.training.trainer import Trainer

    config = get_config("smoke").replace(
        dataset="synthetic", model_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "exp"),
        strategy="cpu", precision="float32", image_size=75, depth_multiplier=0.125,
        global_batch_size=8, steps_per_epoch=1, epochs=3, eval_steps=1, keep_checkpoints=1,
        keep_best="val_top1", export="best").validate()
    setup = setup_run(config)
    trainer = Trainer(setup)
    record, lines = RunRecord(config.model_dir), []
    folder = f"{config.model_dir}/checkpoints"
    rotating = Checkpointer(trainer, checkpoints.make_manager(trainer.checkpoint, folder, 1))
    best = KeepBest(trainer, checkpoints.make_manager(trainer.checkpoint, f"{folder}/best", 1,
                                                      checkpoint_name="best"),
                    record, lines.append)
    iterator = iter(tf.data.Dataset.from_tensors(
        (tf.zeros([8, 75, 75, 3]), tf.zeros([8], tf.int32))).repeat())
    kept = {}
    for step, top1 in ((1, 0.30), (2, 0.50), (3, 0.40)):  # the second validation is the best
        trainer.train(iterator, 1)
        rotating.save(step, 1.0)
        best.consider(step, {"top1": top1})
        kept[step] = [w.numpy() for w in trainer.model.weights]
    record.update(trained_step=3)
    assert sorted(os.listdir(folder)) == ["best", "checkpoint", "ckpt-3.data-00000-of-00001",
                                          "ckpt-3.index"]  # rotation kept only the newest
    assert record.state.best["step"] == 2 and os.path.exists(record.state.best["path"] + ".index")
    assert any(line.startswith("best val_top1 so far: 0.5000 at step 2") for line in lines)

    with SigtermWatch(setup.strategy) as watch:
        entries._finish(setup, trainer, watch, record, progress.Summaries(None), None,
                        lines.append)
    assert trainer.step == 2
    assert all((a == b).all() for a, b in zip(kept[2], [w.numpy() for w in trainer.model.weights]))
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert evaluation["step"] == 2 and evaluation["checkpoint"] == "best"
    assert evaluation["why"].startswith("export=best: the highest val_top1 of the run's "
                                        "validations, 0.5000 at step 2; the last, step 3, had 0.4000")
    exported = str(tmp_path / "exp" / "inception_v3" / "1")
    assert evaluation["exported_to"] == exported and record.state.exported["step"] == 2
    served = tf.saved_model.load(exported).signatures["predict_images"]
    assert served(images=tf.zeros([1, 75, 75, 3]))["probabilities"].shape == (1, 1000)
