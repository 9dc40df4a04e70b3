"""Every recipe and every `--dataset` kind through the CLI, to its export, at a tiny size.

Each case keeps what makes its recipe itself (optimizer, EMA, steps_per_execution, schedule,
augmentation and the precision of the device it is written for) and only shrinks the model and
the run: 75 px, depth_multiplier 0.125, 2 epochs of 3 steps, validation after each epoch. These
runs would have caught the breakages that shortened tests missed (a second validation, the `gpu`
recipe under mixed_float16, `tpu`'s epoch length with steps_per_execution 100).

Each run pairs a recipe with a dataset kind, so every recipe and every kind runs once:
`paper` on ImageNet TFRecord shards, `gpu` on an image folder, `tpu` on synthetic data. The other
recipes and kinds run elsewhere, the same way, to their exports: `smoke` (recipe and dataset)
is the README main job itself (tests/test_trainer_main_job.py, 4 epochs at full size); `finetune`
on a folder, 2 epochs with a resume between them, and `finetune_augmented` on a folder, 2 epochs
(tests/test_finetune_recipe.py); TFDS is
prepared for real and trained on in tests/test_data_tfds_prepare.py.
"""

import os
import re

import numpy as np
import pytest

from configs import RECIPES
from conftest import REPO, run_trainer

EPOCHS, STEPS = 2, 3
TINY = ["--epochs", str(EPOCHS), "--steps_per_epoch", str(STEPS), "--batch_size", "8",
        "--set", "image_size=75", "--set", "depth_multiplier=0.125",
        "--set", "eval_every_epochs=1", "--set", "eval_steps=2", "--set", "image_summaries=false"]
# the precision of the hardware each recipe is written for (auto would pick this CPU's)
PRECISION = {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}


def run_recipe(tmp_path, *args):
    """A recipe shrunk, from the working directory `tmp_path` (./run, ./exports)."""
    return run_trainer(tmp_path, "--strategy", "cpu", "--model_dir", "run", "--export_dir",
                       "exports", *TINY, *args)


def assert_ran_to_export(code, output, tmp_path):
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    epochs = re.findall(r"epoch (\d+)/(\d+) done .*val_top1 [0-9.]+ .*on (\d+) images", output)
    assert [(int(e), int(n)) for e, n, _ in epochs] == [(1, EPOCHS), (2, EPOCHS)], output[-3000:]
    assert f"epoch {EPOCHS}/{EPOCHS} step {STEPS}/{STEPS}" in output  # exactly STEPS per epoch
    assert re.search(r"final evaluation .* on \d+ images", output), output[-2000:]
    assert (tmp_path / "exports" / "inception_v3" / "1" / "saved_model.pb").exists()


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


# recipe -> the dataset kind it runs on (see the module docstring for the other two of each)
RUNS = {"paper": "imagenet_tfrecord", "gpu": "folder", "tpu": "synthetic"}
ELSEWHERE = {"smoke": "test_trainer_main_job.py", "finetune": "test_finetune_recipe.py",
             "finetune_augmented": "test_finetune_recipe.py"}


def test_every_recipe_and_dataset_kind_has_a_run():
    from inception_keras.data.sources import SOURCES

    assert set(RUNS) | set(ELSEWHERE) == set(RECIPES)
    kinds = set(RUNS.values()) | {"smoke", "folder", "tfds"}  # smoke, finetune, tfds elsewhere
    assert kinds == {source.form.partition(":")[0] for source in SOURCES}
    for test_file in ELSEWHERE.values():
        assert os.path.exists(os.path.join(REPO, "tests", test_file))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RUNS))
def test_recipe_runs_to_its_export_on_its_dataset_kind(recipe, tmp_path,
                                                       write_image_folder):
    kind = RUNS[recipe]
    args = ["--config", recipe, "--dataset", kind]
    if kind == "folder":
        write_image_folder(tmp_path / "photos", ["a", "b", "c"], 6, 3)
        args = ["--config", recipe, "--dataset", "folder:photos"]  # relative, as users type it
    elif kind == "imagenet_tfrecord":
        write_tfrecords(tmp_path / "shards")
        args += ["--data_dir", "shards"]
    if recipe in PRECISION:
        args += ["--precision", PRECISION[recipe]]
    code, output = run_recipe(tmp_path, *args)
    assert_ran_to_export(code, output, tmp_path)
    if recipe in PRECISION:
        assert f"precision   {PRECISION[recipe]} (set by --precision)" in output
