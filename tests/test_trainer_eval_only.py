"""`--eval_only` and `--export_only` of a run through the CLI, from a working directory with
relative paths, after the run was moved to another folder: they use the --model_dir given
(multi-crop, EMA weights, their own evaluation record beside the untouched eval.json, per-class
results; a new export version); an ensemble of two runs. (`--eval_only`
of a fine-tune run, which must score its checkpoint and not its init weights, is in
tests/test_finetune_recipe.py.)"""

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


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory):
    """A 1-epoch smoke run with EMA, trained at ./run and then moved to ./moved/run."""
    root = tmp_path_factory.mktemp("pretrained")
    code, output = run_trainer(root, "--model_dir", "run", "--export_dir", "exp", "--epochs", "1",
                               "--set", "ema_momentum=0.9", *TINY)
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
