"""The README's main job verbatim: `python -m trainers.imagenet` with no flag at all, from a
working directory (its outputs go to ./runs/smoke and ./saved_models): 4 epochs on the bundled
smoke data, a validation after each over the whole validation split, the final evaluation, an
export and TensorBoard logs. Then the same command again in the same directory, as a user does:
it must exit 0, train no step and write no second version."""

import os
import re

import pytest

from conftest import run_trainer


@pytest.mark.slow
def test_readme_main_job_runs_to_the_end_and_again(tmp_path):
    code, output = run_trainer(tmp_path, timeout=900)
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    for words in ("config      smoke", "strategy    cpu", "precision   ", "data        smoke: 10 "
                  "classes", f"model_dir   {tmp_path / 'runs' / 'smoke'}"):
        assert words in output, words
    validation = re.findall(r"epoch (\d)/4 done .*val_top1 ([0-9.]+) +val_top5 [0-9.]+ +on (\d+) "
                            r"images", output)
    assert [int(epoch) for epoch, _, _ in validation] == [1, 2, 3, 4], output[-3000:]
    assert {int(images) for _, _, images in validation} == {500}  # the whole split, each time
    match = re.search(r"final evaluation \((?:EMA )?weights\): top-1 ([0-9.]+)  top-5 ([0-9.]+)  "
                      r"cross-entropy [0-9.]+  on 500 images", output)
    assert match, output[-3000:]
    top1, top5 = map(float, match.groups())
    assert top1 > 0.5 and top5 > 0.8, (top1, top5)  # chance: 0.1 and 0.5 on 10 classes
    export = tmp_path / "saved_models" / "inception_v3" / "1"
    assert f"exported the model to {export}" in output
    assert (export / "saved_model.pb").exists()
    run = tmp_path / "runs" / "smoke"
    assert '"global_batch_size": 32' in (run / "config.json").read_text()
    tags = tensorboard_tags(run / "tensorboard")
    for run_name, tag in (("train", "metrics/loss"), ("train", "metrics/cross_entropy"),
                          ("train", "optimizer/learning_rate"), ("train", "perf/step_time_s"),
                          ("train", "perf/images_per_s"), ("train", "training_inputs"),
                          ("validation", "metrics/top1"), ("validation", "metrics/top5"),
                          ("final", "metrics/top1"), ("final", "per_class/confusion_matrix")):
        assert tag in tags.get(run_name, set()), (run_name, tag, tags)

    # the same command again: the run is complete, so it says so and does nothing else
    eval_record = (run / "eval.json").read_text()
    code, again = run_trainer(tmp_path, timeout=300)
    assert code == 0, again[-4000:]
    assert "Traceback" not in again
    assert "resumed from epoch 4 step 93 (global step 372)" in again
    assert "training already complete (372 steps)" in again
    assert not re.search(r"epoch \d/4 step", again)  # no step trained
    assert "validating the weights" not in again  # epoch 4's validation is recorded as done
    assert "final evaluation of step 372 is already in" in again
    assert f"step 372 is already exported to {export}; nothing left to do" in again
    assert sorted(os.listdir(tmp_path / "saved_models" / "inception_v3")) == ["1"]
    assert (run / "eval.json").read_text() == eval_record
    # nothing new in TensorBoard's train run either (no second image of training inputs)
    assert tensorboard_tags(run / "tensorboard", counts=True)["train"]["training_inputs"] == 1


def tensorboard_tags(folder, counts=False):
    """{run: {tag, ...}} of the TensorBoard logs in `folder` ({run: {tag: events}} with
    `counts`)."""
    import tensorflow as tf

    runs = {}
    for name in os.listdir(folder):
        for file in os.listdir(folder / name):
            for event in tf.compat.v1.train.summary_iterator(str(folder / name / file)):
                for value in event.summary.value:
                    tags = runs.setdefault(name, {})
                    tags[value.tag] = tags.get(value.tag, 0) + 1
    return runs if counts else {name: set(tags) for name, tags in runs.items()}
