"""The README's main job verbatim: `python -m trainers.imagenet` with no shortening flag (only
--model_dir/--export_dir into tmp): 4 epochs on the bundled smoke data, a validation after each
over the whole validation split, the final evaluation, an export and TensorBoard logs."""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_readme_main_job_runs_to_the_end(tmp_path):
    command = [sys.executable, "-m", "trainers.imagenet", "--model_dir", str(tmp_path / "run"),
               "--export_dir", str(tmp_path / "exports")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    for words in ("config      smoke", "strategy    cpu", "precision   ", "data        smoke: 10 "
                  "classes"):
        assert words in output, words
    validation = re.findall(r"epoch (\d)/4 done .*val_top1 ([0-9.]+) +val_top5 [0-9.]+ +on (\d+) "
                            r"images", output)
    assert [int(epoch) for epoch, _, _ in validation] == [1, 2, 3, 4], output[-3000:]
    assert {int(images) for _, _, images in validation} == {500}  # the whole split, each time
    match = re.search(r"final evaluation \(weights\): top-1 ([0-9.]+)  top-5 ([0-9.]+)  "
                      r"loss [0-9.]+  on 500 images", output)
    assert match, output[-3000:]
    top1, top5 = map(float, match.groups())
    assert top1 > 0.5 and top5 > 0.8, (top1, top5)  # chance: 0.1 and 0.5 on 10 classes
    export = tmp_path / "exports" / "inception_v3" / "1"
    assert f"exported the model to {export}" in output
    assert (export / "saved_model.pb").exists()
    assert '"global_batch_size": 32' in (tmp_path / "run" / "config.json").read_text()
    import tensorflow as tf

    tags = set()
    events = tmp_path / "run" / "tensorboard"
    for name in os.listdir(events):
        for event in tf.compat.v1.train.summary_iterator(str(events / name)):
            tags.update(value.tag for value in event.summary.value)
    for tag in ("train/loss", "train/learning_rate", "perf/step_time_s", "perf/images_per_s",
                "augmented_inputs", "eval/top1", "eval/top5", "final/top1"):
        assert tag in tags, (tag, sorted(tags))
