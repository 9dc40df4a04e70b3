"""`--eval_only` and `--export_only` of a run through the CLI, from a working directory with
relative paths, after the run was moved to another folder: they use the --model_dir given
(multi-crop, EMA weights, their own evaluation record beside the untouched eval.json, per-class
results; a new export version); an ensemble of two runs. (`--eval_only`
of a fine-tune run, which must score its checkpoint and not its init weights, is in
tests/test_finetune_recipe.py.) Then the run's TensorBoard files, read back as TensorBoard reads
them, after those commands and a rerun of the training command."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_trainer

TINY = ["--batch_size", "8", "--steps_per_epoch", "2", "--set", "image_size=75",
        "--set", "depth_multiplier=0.125", "--set", "eval_steps=2",
        "--set", "image_summaries=false"]
# with its TensorBoard image of training inputs
TRAINING = ["--model_dir", "run", "--export_dir", "exp", "--epochs", "1",
            "--set", "ema_momentum=0.9", *TINY[:-2]]


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory):
    """A 1-epoch smoke run with EMA, trained at ./run and then moved to ./moved/run."""
    root = tmp_path_factory.mktemp("pretrained")
    code, output = run_trainer(root, *TRAINING)
    assert code == 0, output[-3000:]
    (root / "moved").mkdir()
    shutil.move(str(root / "run"), str(root / "moved" / "run"))
    return root


@pytest.mark.slow
def test_eval_only_scores_a_moved_run_with_ten_crops_and_writes_its_results(moved_run):
    code, output = run_trainer(moved_run, "--eval_only", "--model_dir", "moved/run",
                               "--set", "eval_crops=10", "--set", "eval_steps=2")
    assert code == 0, output[-3000:]
    assert f"restored {moved_run / 'moved' / 'run' / 'checkpoints' / 'ckpt-2'} (step 2)" in output
    assert "final evaluation (EMA weights, 10 crops)" in output
    run = moved_run / "moved" / "run"
    path = run / "evaluations" / "step2-crops10.json"
    assert f"wrote {path} and {run / 'evaluations' / 'step2-crops10.png'}" in output
    record = json.loads(path.read_text())
    # the smoke recipe's batch 8 holds 8 // 10 -> 1 image of 10 crops: 2 batches, 2 images
    assert record["eval_crops"] == 10 and record["examples"] == 2 and record["step"] == 2
    assert record["kind"] == "eval_only" and record["config"] == "smoke"
    assert record["checkpoint"] == str(run / "checkpoints" / "ckpt-2")
    assert record["excluded"] == 0 and record["image_size"] == 75
    assert 0.0 <= record["top1"] <= record["top5"] <= 1.0
    assert len(record["per_class_top1"]) == 10
    assert (run / "evaluations" / "step2-crops10.png").read_bytes()[:4] == b"\x89PNG"
    final = json.loads((run / "eval.json").read_text())  # the training's own, kept as it was
    assert final["kind"] == "final" and final["eval_crops"] == 1 and final["examples"] == 16
    assert "Traceback" not in output
    # a rerun of the training relies on eval.json and says so, whatever --eval_only wrote (a
    # record is never overwritten: tests/test_evaluation_records.py)
    code, output = run_trainer(moved_run, "--model_dir", "moved/run", "--export_dir", "exp",
                               "--epochs", "1", "--set", "ema_momentum=0.9", *TINY)
    assert code == 0, output[-3000:]
    assert f"the final evaluation of step 2 is already in {run / 'eval.json'}" in output
    state = json.loads((run / "run_state.json").read_text())  # the path as written, before the move
    assert state["evaluated"] == {"step": 2, "eval_crops": 1,
                                  "path": str(moved_run / "run" / "eval.json")}


@pytest.mark.slow
def test_export_only_of_a_moved_run_writes_a_new_version_in_each_format(moved_run):
    code, output = run_trainer(moved_run, "--export_only", "--model_dir", "moved/run",
                               "--export_dir", "elsewhere",
                               "--set", "export_formats=savedmodel,litert")
    assert code == 0, output[-3000:]
    assert f"exported the model to {moved_run / 'elsewhere' / 'inception_v3' / '1'}" in output
    assert (moved_run / "elsewhere" / "inception_v3" / "1" / "saved_model.pb").exists()
    files = moved_run / "elsewhere" / "inception_v3_formats" / "1"
    assert f"exported the LiteRT/ONNX files to {files}" in output
    assert sorted(os.listdir(files)) == ["card.json", "labels.txt", "model.tflite"]
    card = json.loads((files / "card.json").read_text())
    assert card["source"]["step"] == 2 and card["source"]["weights"] == "EMA weights"
    assert card["files"]["model.tflite"]["agreement"]["top1_agreement"] >= 0.995
    assert os.listdir(moved_run / "elsewhere" / "inception_v3") == ["1"]  # what TF Serving sees
    state = json.loads((moved_run / "moved" / "run" / "run_state.json").read_text())
    assert state["exported"]["path"] == str(moved_run / "elsewhere" / "inception_v3" / "1")


@pytest.mark.slow
def test_eval_only_mistakes_are_one_line(tmp_path, moved_run):
    code, output = run_trainer(tmp_path, "--eval_only", "--model_dir", "nothing")
    assert code == 2 and "error: --eval_only:" in output and "Traceback" not in output
    assert str(tmp_path / "nothing") in output
    code, output = run_trainer(tmp_path, "--eval_only", "--export_only", "--model_dir", "x")
    assert code == 2 and "pick one" in output
    code, output = run_trainer(moved_run, "--eval_only", "--model_dir", "moved/run",
                               "--set", "depth_multiplier=0.25")
    assert code == 2 and "depth_multiplier cannot change" in output, output[-2000:]


def tensorboard_events(run_dir):
    """{tensorboard run: {tag: [(step, value, description)]}} of `run_dir`, in write order."""
    import tensorflow as tf

    runs, descriptions = {}, {}
    for folder, _, files in os.walk(run_dir / "tensorboard"):
        name = os.path.relpath(folder, run_dir / "tensorboard")
        for file in sorted(f for f in files if f.startswith("events.")):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, file)):
                for value in event.summary.value:
                    if value.metadata.summary_description:
                        descriptions[name, value.tag] = value.metadata.summary_description
                    runs.setdefault(name, {}).setdefault(value.tag, []).append(
                        (event.step, value))
    return {name: {tag: [(step, value, descriptions.get((name, tag))) for step, value in points]
                   for tag, points in tags.items()} for name, tags in runs.items()}


def number(value):
    import tensorflow as tf

    return float(tf.make_ndarray(value.tensor))


def picture(value):
    import tensorflow as tf

    return tf.io.decode_png(tf.make_ndarray(value.tensor)[2]).numpy()


@pytest.mark.slow
def test_tensorboard_runs_overlay_and_hold_the_final_evaluation(moved_run):
    from tensorboard.plugins.hparams import metadata as hparams_metadata

    run = moved_run / "moved" / "run"
    # the same command again: complete, so it trains nothing and logs no second image
    code, output = run_trainer(moved_run, *TRAINING[:1], "moved/run", *TRAINING[2:])
    assert code == 0 and "training already complete" in output, output[-3000:]
    runs = tensorboard_events(run)
    assert {"train", "validation", "final"} <= set(runs), sorted(runs)
    train, validation, final = runs["train"], runs["validation"], runs["final"]

    # train and validation under the same tags (one chart each), every scalar described
    for tag in ("metrics/top1", "metrics/cross_entropy"):
        assert tag in train and tag in validation and tag in final, tag
    assert "metrics/top5" in validation and "metrics/top5" in final
    for name, tags in (("train", train), ("validation", validation), ("final", final)):
        for tag, points in tags.items():
            if points[0][1].metadata.plugin_data.plugin_name == "scalars":
                assert points[0][2], f"{name}/{tag} has no description"
    # the training objective (smoothed, with the aux head) is above the main head's plain CE
    losses = [number(v) for _, v, _ in train["metrics/loss"]]
    plain = [number(v) for _, v, _ in train["metrics/cross_entropy"]]
    assert all(loss > ce > 0 for loss, ce in zip(losses, plain)), (losses, plain)
    assert [s for s, _, _ in train["stability/skipped_steps"]] == [2]
    assert number(train["stability/skipped_steps"][-1][1]) == 0.0

    # the final run's newest scores are the newest evaluation record's (--eval_only's own record)
    newest = max([run / "eval.json", *(run / "evaluations").glob("*.json")],
                 key=lambda path: path.stat().st_mtime)
    record = json.loads(newest.read_text())
    for key in ("top1", "top5", "cross_entropy"):
        assert number(final[f"metrics/{key}"][-1][1]) == pytest.approx(record[key], abs=1e-6)
    for name, top1 in record["per_class_top1"].items():
        if top1 is not None:  # (a class without images here: an earlier evaluation may score it)
            assert number(final[f"per_class/top1/{name}"][-1][1]) == pytest.approx(top1), name
    table = final["per_class/top1"][-1][1].tensor.string_val[0].decode()
    worst = min((v, k) for k, v in record["per_class_top1"].items() if v is not None)
    assert table.splitlines()[2] == f"| {worst[1]} | {worst[0]:.4f} |", table

    # the confusion matrix image: the PNG beside that record, with the per-class top-1 diagonal
    image = picture(final["per_class/confusion_matrix"][-1][1])
    import tensorflow as tf

    assert np.array_equal(image, tf.io.decode_png(
        (newest.parent / (newest.stem + ".png") if newest.parent.name == "evaluations"
         else run / "confusion_matrix.png").read_bytes()))
    cell = 48  # 10 classes: 48 pixels each
    for i, top1 in enumerate(record["per_class_top1"].values()):
        red = image[i * cell + cell // 2, i * cell + cell // 2, 0]
        if top1 is None:
            assert red == 200  # grey: a class without images
        else:
            assert ((255.0 - red) / 247.0) ** 2 == pytest.approx(top1, abs=0.01), (i, red, top1)

    # the config as text and as the HParams of the final run (its metrics: the final scores)
    config_text = train["config"][0][1].tensor.string_val[0].decode()
    assert "| depth_multiplier | `0.125` |" in config_text and "| ema_momentum | `0.9` |" in \
        config_text
    start = hparams_metadata.parse_session_start_info_plugin_data(
        final["_hparams_/session_start_info"][0][1].metadata.plugin_data.content)
    assert start.hparams["depth_multiplier"].number_value == 0.125
    assert start.hparams["augment"].string_value == "none"
    # no experiment config: TensorBoard then shows first the keys that differ between runs
    assert "_hparams_/experiment" not in final

    # the training inputs: once (the fresh start), titled by what the pipeline does
    inputs = [(name, point) for name, tags in runs.items()
              for tag, points in tags.items() if "inputs" in tag for point in points]
    assert [(name, step) for name, (step, _, _) in inputs] == [("train", 0)], inputs
    _, grid, description = inputs[0][1]
    assert description == "training images as the model sees them: crop and flip"
    assert picture(grid).std() > 20  # pictures, not a blank


@pytest.mark.slow
def test_an_ensemble_of_two_runs_averages_their_probabilities(moved_run):
    """The second run: a copy of the first trained 2 steps more (other weights). The expected
    numbers: each run's exported float32 model on the same 16 validation images, averaged here."""
    shutil.copytree(moved_run / "moved" / "run", moved_run / "other")
    code, output = run_trainer(moved_run, "--model_dir", "other", "--export_dir", "exp_other",
                               "--epochs", "2", "--set", "ema_momentum=0.9", *TINY)
    assert code == 0, output[-3000:]
    code, output = run_trainer(moved_run, "--eval_only", "--model_dir", "moved/run",
                               "--model_dir", "other", "--set", "precision=float32")
    assert code == 0, output[-3000:]
    path = moved_run / "moved" / "run" / "evaluations" / "ensemble2-crops1.json"
    record = json.loads(path.read_text())
    assert record["kind"] == "ensemble" and record["examples"] == 16 and record["excluded"] == 0
    assert [(m["model_dir"], m["step"], m["weights"]) for m in record["members"]] == [
        (str(moved_run / "moved" / "run"), 2, "EMA weights"),
        (str(moved_run / "other"), 4, "EMA weights")]
    assert "on 16 images" in output and "Traceback" not in output

    from inception_keras import data
    fn = data.make_input_fn("smoke", data_dir=None, split="validation", image_size=75,
                            global_batch_size=8, is_training=False, masked=True)
    batches = list(fn().take(2))
    images = tf.concat([b[0] for b in batches], 0)
    labels = np.concatenate([b[1].numpy() for b in batches])
    exports = [tf.saved_model.load(str(moved_run / export / "inception_v3" / "1"))
               for export in ("exp", "exp_other")]  # held: their variables live as long
    probabilities = np.mean([model.predict_images((images + 1.0) * 127.5)["probabilities"]
                             .numpy() for model in exports], axis=0)
    assert not np.allclose(probabilities[:, 0], probabilities[0, 0])  # the images differ
    likelihood = probabilities[np.arange(16), labels]
    np.testing.assert_allclose(record["cross_entropy"], np.mean(-np.log(likelihood)), rtol=1e-4)
    assert record["top1"] == np.mean(np.argmax(probabilities, 1) == labels)


@pytest.mark.slow
def test_ensemble_mistakes_are_one_line(tmp_path, moved_run):
    code, output = run_trainer(moved_run, "--model_dir", "moved/run", "--model_dir", "x")
    assert code == 2 and "--model_dir is given 2 times: only --eval_only" in output, output
    code, output = run_trainer(moved_run, "--eval_only", "--model_dir", "moved/run",
                               "--model_dir", "nothing")
    assert code == 2 and f"{moved_run / 'nothing'} has no config.json" in output, output
    assert "Traceback" not in output
