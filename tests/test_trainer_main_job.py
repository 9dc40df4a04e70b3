"""The README's main job, `python -m trainers.imagenet` with no arguments, shortened by flags:
bundled smoke data, above-chance validation accuracy, TensorBoard logs, an export."""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_no_argument_main_job_learns_and_exports(tmp_path):
    command = [sys.executable, "-m", "trainers.imagenet", "--epochs", "1",
               "--steps_per_epoch", "40", "--model_dir", str(tmp_path / "run"),
               "--export_dir", str(tmp_path / "exports")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=500,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    for words in ("config      smoke", "strategy    cpu", "precision   ", "data        smoke: 10 "
                  "classes", "epoch 1/1 step 40/40"):
        assert words in output, words
    match = re.search(r"final evaluation \(weights\): top-1 ([0-9.]+)  top-5 ([0-9.]+)", output)
    assert match, output[-3000:]
    top1, top5 = map(float, match.groups())
    assert top1 > 0.3 and top5 > 0.7, (top1, top5)  # chance: 0.1 and 0.5 on 10 classes
    export = tmp_path / "exports" / "inception_v3" / "1"
    assert f"exported the model to {export}" in output
    assert (export / "saved_model.pb").exists()
    # the resolved config and TensorBoard summaries (incl. the augmented-image grid) are saved
    assert '"global_batch_size": 32' in (tmp_path / "run" / "config.json").read_text()
    import tensorflow as tf

    tags = set()
    events = tmp_path / "run" / "tensorboard"
    for name in os.listdir(events):
        for event in tf.compat.v1.train.summary_iterator(str(events / name)):
            tags.update(value.tag for value in event.summary.value)
    for tag in ("train/loss", "train/learning_rate", "perf/step_time_s", "augmented_inputs",
                "eval/predictions_top1", "final/top1"):
        assert tag in tags, (tag, sorted(tags))
