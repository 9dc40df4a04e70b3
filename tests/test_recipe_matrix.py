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

The paper's other rows (configs/paper_v2*.py, paper_res*.py) are `paper` with model switches and
one knob each: the two whose networks no other run builds, `paper_v2` (7x7 stem, no BN on the
auxiliary fully connected layer, SGD, no smoothing) and `paper_res79` (stride-1 first layer, no
stem pooling, 79 px), run here more cheaply still (one epoch of 2 steps, one validation), and
`python -m inception_keras.paper` reads their eval.json; the other rows differ from these and
`paper` in one documented key each (tests/test_recipes_configs.py): four more CLI runs of
1-2 minutes each on 2 shared cores are more than the suite's budget for the issue.
"""

import os
import re

import numpy as np
import pytest

from configs import RECIPES
from conftest import REPO, run_module, run_trainer

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


# the paper's rows: run here cheaply, or one documented key from a run (see the docstring)
PAPER_RUNS = {"paper_v2": [], "paper_res79": ["--set", "image_size=79"]}
PAPER_ONE_KEY_FROM_A_RUN = {"paper_v2_rmsprop", "paper_v2_smoothing", "paper_v2_factorized",
                            "paper_res151"}
CHEAP = ["--epochs", "1", "--steps_per_epoch", "2", "--batch_size", "4", "--dataset", "synthetic",
         "--set", "image_size=75", "--set", "depth_multiplier=0.125", "--set", "eval_every_epochs=0",
         "--set", "eval_steps=1", "--set", "image_summaries=false", "--precision", "float32"]


def test_every_recipe_and_dataset_kind_has_a_run():
    from inception_keras.data.sources import SOURCES

    assert set(RUNS) | set(ELSEWHERE) | set(PAPER_RUNS) | PAPER_ONE_KEY_FROM_A_RUN == set(RECIPES)
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


@pytest.fixture(scope="module")
def paper_row_runs(tmp_path_factory):
    """{recipe: (exit code, output, working directory)} of the cheap runs of PAPER_RUNS, each
    from its own working directory (./run, ./exports)."""
    runs = {}
    for recipe, extra in PAPER_RUNS.items():
        cwd = tmp_path_factory.mktemp(recipe)
        code, output = run_trainer(cwd, "--config", recipe, "--strategy", "cpu", "--model_dir",
                                   "run", "--export_dir", "exports", *CHEAP, *extra)
        runs[recipe] = code, output, cwd
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("recipe, macs", [("paper_v2", "0.0078"), ("paper_res79", "0.164")])
def test_paper_rows_run_to_their_export(paper_row_runs, recipe, macs):
    code, output, cwd = paper_row_runs[recipe]
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    # the row's own network: its multiply-adds at 75 / 79 px (the 3x3 stem's: 0.0112 G at 75;
    # the 79 network at stride 1 costs about what the 299 one does)
    assert re.search(rf" {macs} G multiply-adds per image at (75x75|79x79)", output), output
    assert re.search(r"final evaluation .* on \d+ images", output), output[-2000:]
    assert (cwd / "exports" / "inception_v3" / "1" / "saved_model.pb").exists()


@pytest.mark.slow
def test_paper_tables_hold_the_papers_numbers_and_the_runs(paper_row_runs):
    import json

    base = paper_row_runs["paper_v2"][2].parent
    dirs = [os.path.join(paper_row_runs[recipe][2].name, "run") for recipe in PAPER_RUNS]
    result = run_module("inception_keras.paper", *dirs, "--markdown", cwd=base)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    v2 = json.loads((paper_row_runs["paper_v2"][2] / "run" / "eval.json").read_text())
    r79 = json.loads((paper_row_runs["paper_res79"][2] / "run" / "eval.json").read_text())
    top1_error, top5_error = 100 * (1 - v2["top1"]), 100 * (1 - v2["top5"])
    row = next(line for line in lines if line.startswith("| Inception-v2 |"))
    assert f"| 23.40 / - | {top1_error:.2f} / {top5_error:.2f} ({v2['examples']} images" in row
    assert f"| {top1_error - 23.4:+.2f} |" in row
    assert "| 23.83M | 5.300G | 3.8G |" in row  # the full-size v2 network, as the paper counts
    row = next(line for line in lines if line.startswith("| 79x79"))
    assert f"| 75.20 | {100 * r79['top1']:.2f} ({r79['examples']} images" in row
    assert "| 23.85M | 5.362G | - |" in row
    row = next(line for line in lines if line.startswith("| + RMSProp |"))  # no run: costs only
    assert "| 23.10 / 6.30 | - | - | 23.83M | 5.300G | 3.8G |" in row
    assert not any(line.startswith("**Table 4") for line in lines)  # no multi-crop records
    bad = run_module("inception_keras.paper", "exports", cwd=paper_row_runs["paper_v2"][2])
    assert bad.returncode == 2 and bad.stderr.startswith("error: RUN_DIR exports is not")
    assert len(bad.stderr.strip().splitlines()) == 1
