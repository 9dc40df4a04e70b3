"""`--eval_only` of a run (multi-crop, EMA weights, eval.json, per-class results) through the CLI.
(The resume of a fine-tune run, which must not load its init weights again, is in
tests/test_finetune_recipe.py.)"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--batch_size", "8", "--steps_per_epoch", "2", "--set", "image_size=75",
        "--set", "depth_multiplier=0.125", "--set", "eval_steps=2",
        "--set", "image_summaries=false"]


def trainer(*args):
    result = subprocess.run([sys.executable, "-m", "trainers.imagenet", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 1-epoch smoke run with EMA: its model_dir."""
    root = tmp_path_factory.mktemp("pretrained")
    code, output = trainer("--model_dir", str(root / "run"), "--export_dir", str(root / "exp"),
                           "--epochs", "1", "--set", "ema_momentum=0.9", *TINY)
    assert code == 0, output[-3000:]
    return root / "run"


@pytest.mark.slow
def test_eval_only_scores_a_run_with_ten_crops_and_writes_its_results(pretrained):
    code, output = trainer("--eval_only", "--model_dir", str(pretrained),
                           "--set", "eval_crops=10", "--set", "eval_steps=2")
    assert code == 0, output[-3000:]
    assert "final evaluation (EMA weights, 10 crops)" in output
    record = json.loads((pretrained / "eval.json").read_text())
    # the smoke recipe's batch 8 holds 8 // 10 -> 1 image of 10 crops: 2 batches, 2 images
    assert record["eval_crops"] == 10 and record["examples"] == 2
    assert 0.0 <= record["top1"] <= record["top5"] <= 1.0
    assert len(record["per_class_top1"]) == 10
    assert (pretrained / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "Traceback" not in output


@pytest.mark.slow
def test_eval_only_mistakes_are_one_line(tmp_path):
    code, output = trainer("--eval_only", "--model_dir", str(tmp_path / "nothing"))
    assert code == 2 and "error: --eval_only:" in output and "Traceback" not in output
    code, output = trainer("--eval_only", "--export_only", "--model_dir", str(tmp_path))
    assert code == 2 and "pick one" in output
