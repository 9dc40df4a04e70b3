"""Every recipe and every `--dataset` kind through the CLI, to its export, at a tiny size.

Each case keeps what makes its recipe itself (optimizer, EMA, steps_per_execution, schedule,
augmentation and the precision of the device it is written for) and only shrinks the model and
the run: 75 px, depth_multiplier 0.125, 2 epochs of 3 steps, validation after each epoch. These
runs would have caught the breakages that shortened tests missed (a second validation, the `gpu`
recipe under mixed_float16, `tpu`'s epoch length with steps_per_execution 100). TFDS, the last
dataset kind, is prepared for real in tests/test_data_tfds_prepare.py; `smoke` is the recipes' own.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from configs import RECIPES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS, STEPS = 2, 3
TINY = ["--epochs", str(EPOCHS), "--steps_per_epoch", str(STEPS), "--batch_size", "8",
        "--set", "image_size=75", "--set", "depth_multiplier=0.125",
        "--set", "eval_every_epochs=1", "--set", "eval_steps=2", "--set", "image_summaries=false"]
# the precision of the hardware each recipe is written for (auto would pick this CPU's)
PRECISION = {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}
# Keras' ImageNet file cannot be downloaded here and fits no 0.125-wide model: finetune starts
# fresh in the matrix (tests/test_finetune_recipe.py starts it from a weights file)
EXTRA = {"finetune": ["--set", "init_weights=none", "--set", "model_name=inception_v3"]}


def run_trainer(tmp_path, *args):
    command = [sys.executable, "-m", "trainers.imagenet", "--strategy", "cpu",
               "--model_dir", str(tmp_path / "run"), "--export_dir", str(tmp_path / "exports"),
               *TINY, *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def assert_ran_to_export(code, output, tmp_path):
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    epochs = re.findall(r"epoch (\d+)/(\d+) done .*val_top1 [0-9.]+ .*on (\d+) images", output)
    assert [(int(e), int(n)) for e, n, _ in epochs] == [(1, EPOCHS), (2, EPOCHS)], output[-3000:]
    assert f"epoch {EPOCHS}/{EPOCHS} step {STEPS}/{STEPS}" in output  # exactly STEPS per epoch
    assert re.search(r"final evaluation .* on \d+ images", output), output[-2000:]
    assert (tmp_path / "exports" / "inception_v3" / "1" / "saved_model.pb").exists()


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_to_its_export(recipe, tmp_path):
    args = ["--config", recipe, "--dataset", "smoke", *EXTRA.get(recipe, [])]
    if recipe in PRECISION:
        args += ["--precision", PRECISION[recipe]]
    code, output = run_trainer(tmp_path, *args)
    assert_ran_to_export(code, output, tmp_path)
    if recipe in PRECISION:
        assert f"precision   {PRECISION[recipe]} (set by --precision)" in output


def write_folder(root, classes=3, per_class=6):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("validation", 3)):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (40, 50, 3)).astype("uint8")
                (folder / f"{i}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    return root


def write_tfrecords(root):
    import tensorflow as tf

    from inception_keras.data import serialize_example

    rng = np.random.default_rng(1)
    root.mkdir()
    for split, count in (("train", 24), ("validation", 19)):
        with tf.io.TFRecordWriter(str(root / f"{split}-00000-of-00001")) as writer:
            for _ in range(count):
                pixels = rng.integers(0, 256, (40, 50, 3)).astype("uint8")
                writer.write(serialize_example(tf.io.encode_jpeg(pixels).numpy(),
                                               int(rng.integers(1, 1001)), height=40, width=50))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["synthetic", "folder", "imagenet_tfrecord"])  # smoke: above
def test_dataset_kind_runs_to_its_export(kind, tmp_path):
    args = ["--dataset", kind]
    if kind == "folder":
        args = ["--dataset", f"folder:{write_folder(tmp_path / 'photos')}"]
    elif kind == "imagenet_tfrecord":
        args += ["--data_dir", str(write_tfrecords(tmp_path / "shards"))]
    code, output = run_trainer(tmp_path, *args)
    assert_ran_to_export(code, output, tmp_path)
