"""`--eval_only` and `--export_only` of a run through the CLI, from a working directory with
relative paths, after the run was moved to another folder: they use the --model_dir given
(multi-crop, EMA weights, eval.json, per-class results; a new export version). (`--eval_only`
of a fine-tune run, which must score its checkpoint and not its init weights, is in
tests/test_finetune_recipe.py.)"""

import json
import os
import shutil

import pytest

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
    record = json.loads((moved_run / "moved" / "run" / "eval.json").read_text())
    # the smoke recipe's batch 8 holds 8 // 10 -> 1 image of 10 crops: 2 batches, 2 images
    assert record["eval_crops"] == 10 and record["examples"] == 2 and record["step"] == 2
    assert 0.0 <= record["top1"] <= record["top5"] <= 1.0
    assert len(record["per_class_top1"]) == 10
    assert (moved_run / "moved" / "run" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "Traceback" not in output


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
