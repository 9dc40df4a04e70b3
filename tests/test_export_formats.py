"""LiteRT and ONNX exports of a trained smoke-size Inception-v3, end to end (slow tier).

One chain, shared by the tests through module fixtures: a narrow Inception-v3 (75 px,
depth_multiplier 0.125) is trained for a minute's fraction on the smoke set, saved as a training
run's model_dir (config.json, a checkpoint with EMA averages; the raw weights are then spoiled,
so only the EMA weights classify well), and `python -m inception_keras.export --model <run>
--formats savedmodel,litert,litert_float16,litert_int8,onnx` exports it once. The tests check
the card against a recomputation, the bounds, predict on the files against the SavedModel, and
that TF Serving's model base path holds nothing but its integer versions.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import contextlib
import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from inception_keras import build_inception_v3
from inception_keras.data import SMOKE_CLASS_NAMES, make_input_fn
from inception_keras.data.smoke_images import draw_image
from inception_keras.export import ExportError, export_formats, formats
from inception_keras.export.__main__ import main as export_main
from inception_keras.export.formats.card import read_card
from inception_keras.export.formats.export import FORMATS_SUFFIX
from inception_keras.export.formats.deploy_model import deploy_model
from inception_keras.export.versions import existing_versions
from inception_keras.predict import main as predict_main
from inception_keras.training.run_model import load_run_model

pytestmark = pytest.mark.slow

SIZE = 75
STEPS = 80
TRAIN_IMAGES = 1000
STEP = 777  # the checkpoint's number, as the trainer numbers them by step
FILES = ("model.tflite", "model_float16.tflite", "model_int8.tflite", "model.onnx")
FLOAT_FILES = ("model.tflite", "model_float16.tflite", "model.onnx")


def smoke_split(split, count):
    """(images, class ids) of the first `count` smoke images of `split`, eval-preprocessed."""
    batches = make_input_fn("smoke", data_dir=None, split=split, image_size=SIZE,
                            global_batch_size=count, is_training=False)()
    images, labels = next(iter(batches))
    return images.numpy(), labels.numpy()


@pytest.fixture(scope="module")
def run(smoke_dataset, tmp_path_factory):
    """A smoke run's model_dir whose newest checkpoint holds trained EMA averages and spoiled raw
    weights (a random classifier kernel: exported, they would score at chance)."""
    from configs.base import TrainConfig
    from inception_keras.training.loop.checkpoints import CHECKPOINT_SUBDIR, save_config
    from inception_keras.training.step.ema import ExponentialMovingAverage
    from inception_keras.training.step.steps import Counters

    keras.utils.set_random_seed(0)
    model = build_inception_v3(input_shape=(SIZE, SIZE, 3), classes=len(SMOKE_CLASS_NAMES),
                               include_aux=False, depth_multiplier=0.125, batch_norm_momentum=0.5)
    # not XLA: compiling Inception's train step takes longer than these steps on 2 cores
    model.compile(keras.optimizers.Adam(4e-3), "sparse_categorical_crossentropy",
                  jit_compile=False)
    images, labels = smoke_split("train", TRAIN_IMAGES)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(TRAIN_IMAGES, seed=0)
    model.fit(batches.repeat().batch(32), steps_per_epoch=STEPS, verbose=0)

    model_dir = tmp_path_factory.mktemp("run")
    config = TrainConfig(name="smoke", dataset="smoke", image_size=SIZE, depth_multiplier=0.125,
                         include_aux=False, batch_norm_momentum=0.5, ema_momentum=0.99,
                         model_dir=str(model_dir))
    save_config(config, str(model_dir))
    ema = ExponentialMovingAverage(model, 0.99)  # the averages: the trained weights
    dense = model.get_layer("predictions")
    dense.kernel.assign(tf.random.normal(dense.kernel.shape, seed=1))  # the raw weights: spoiled
    counters = Counters()  # the trainer's step counter, saved with every checkpoint
    counters.step.assign(STEP)
    checkpoint = tf.train.Checkpoint(model=model, ema=ema, counters=counters)
    tf.train.CheckpointManager(checkpoint, str(model_dir / CHECKPOINT_SUBDIR), 1).save(STEP)
    return str(model_dir)


@pytest.fixture(scope="module")
def export(run, tmp_path_factory):
    """The CLI export of the run in every format: (export_dir, its stdout lines)."""
    model_dir = run
    export_dir = tmp_path_factory.mktemp("saved_models")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = export_main(["--model", model_dir, "--export_dir", str(export_dir),
                            "--model_name", "smoke", "--formats", ",".join(formats.FORMATS)])
    assert code == 0, stdout.getvalue()
    return export_dir, stdout.getvalue().splitlines()


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """A folder of smoke-style JPEGs, two per class, not in the dataset."""
    folder = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(123)
    for index in range(2 * len(SMOKE_CLASS_NAMES)):
        label = index % len(SMOKE_CLASS_NAMES)
        image = tf.io.encode_jpeg(draw_image(label, rng), quality=90).numpy()
        (folder / f"{index:02d}_{SMOKE_CLASS_NAMES[label]}.jpg").write_bytes(image)
    return folder


def test_the_cli_writes_each_format_beside_the_saved_model_and_prints_the_table(export):
    export_dir, lines = export
    folder = export_dir / f"smoke{FORMATS_SUFFIX}" / "1"
    assert lines[-2:] == [str(folder), str(export_dir / "smoke" / "1")]
    assert sorted(os.listdir(folder)) == sorted([*FILES, "card.json", "labels.txt"])
    assert (folder / "labels.txt").read_text().splitlines() == list(SMOKE_CLASS_NAMES)
    assert lines[0].startswith("agreement with the Keras model on 500 images (smoke, validation")
    assert [line.split()[0] for line in lines[2:6]] == list(FILES)


def test_the_card_says_what_the_files_take_and_where_they_come_from(export, run):
    export_dir, _ = export
    card = read_card(export_dir / f"smoke{FORMATS_SUFFIX}" / "1")
    assert card["model_name"] == "smoke" and card["version"] == 1
    assert card["input"]["shape"] == [None, SIZE, SIZE, 3]
    assert card["input"]["dtype"] == "float32" and card["input"]["value_range"] == [-1.0, 1.0]
    assert "central crop keeping 87.5%" in card["input"]["preprocessing"]
    assert card["output"]["shape"] == [None, 10] and card["num_classes"] == 10
    assert card["onnx_opset"] == formats.ONNX_OPSET == 17
    assert card["source"] == {"model_dir": run, "step": STEP, "weights": "EMA",
                              "checkpoint": os.path.join(run, "checkpoints", f"ckpt-{STEP}")}
    assert card["agreement_data"]["calibration_images"] == formats.DEFAULT_CALIBRATION_EXAMPLES
    for name in FILES:
        facts = card["files"][name]
        assert facts["bytes"] == os.path.getsize(export_dir / f"smoke{FORMATS_SUFFIX}" / "1" / name)
        assert facts["input_dtype"] == facts["output_dtype"] == "float32"
    sizes = {name: card["files"][name]["bytes"] for name in FILES}
    assert sizes["model_int8.tflite"] < sizes["model_float16.tflite"] < sizes["model.tflite"]


def test_the_cards_agreement_equals_a_recomputation_and_meets_the_bounds(export, run):
    """Recomputed here from the files and the run's model (its EMA weights: the spoiled raw
    weights would score at chance)."""
    export_dir, _ = export
    folder = export_dir / f"smoke{FORMATS_SUFFIX}" / "1"
    card = read_card(folder)
    validation, labels = smoke_split("validation", 500)
    labels = np.asarray(labels)  # class ids
    keras_model, _ = deploy_model(load_run_model(run).model)
    reference = keras_model.predict(validation, batch_size=100, verbose=0)["probabilities"]
    assert card["agreement_data"]["images"] == 500
    assert card["agreement_data"]["keras_top1_accuracy"] == (reference.argmax(-1) == labels).mean()
    assert card["agreement_data"]["keras_top1_accuracy"] > 0.9
    for name in FILES:
        probabilities = formats.load_runner(str(folder / name))(validation)
        measured = card["files"][name]["agreement"]
        assert measured["images"] == 500
        assert measured["top1_agreement"] == (probabilities.argmax(-1) == reference.argmax(-1)).mean()
        assert measured["top1_accuracy"] == (probabilities.argmax(-1) == labels).mean()
        assert measured["max_abs_probability_difference"] == pytest.approx(
            np.abs(probabilities - reference).max(), abs=2e-5)
        bound = 0.97 if "int8" in name else 0.995
        assert card["files"][name]["min_top1_agreement"] == bound
        assert measured["top1_agreement"] >= bound, name
    largest = {name: card["files"][name]["agreement"]["max_abs_probability_difference"]
               for name in FILES}
    assert largest["model.tflite"] < 1e-4 and largest["model.onnx"] < 1e-4
    assert largest["model_float16.tflite"] < 0.05  # float16 weights


def predict_json(capsys, *args):
    code = predict_main([*args, "--json"])
    document = json.loads(capsys.readouterr().out)
    return code, document


def test_predict_with_each_file_gives_the_saved_models_answers(export, jpegs, capsys):
    export_dir, _ = export
    folder = export_dir / f"smoke{FORMATS_SUFFIX}" / "1"
    code, saved = predict_json(capsys, str(jpegs), "--model", str(export_dir / "smoke"))
    assert code == 0 and len(saved["results"]) == 20
    expected = [[p["class"] for p in r["predictions"]] for r in saved["results"]]
    right = sum(r["file"].endswith(f"_{r['predictions'][0]['name']}.jpg") for r in saved["results"])
    assert right >= 18  # the SavedModel holds the trained (EMA) weights too
    for name in FILES:
        code, document = predict_json(capsys, str(jpegs), "--model", str(folder / name))
        assert code == 0 and document["model"] == str(folder / name)
        assert [r["file"] for r in document["results"]] == [r["file"] for r in saved["results"]]
        top1 = [r["predictions"][0]["class"] for r in document["results"]]
        same = sum(a == b[0] for a, b in zip(top1, expected))
        if name in FLOAT_FILES:
            assert same == len(expected), name
            for mine, theirs in zip(document["results"], saved["results"]):
                if "float16" in name:  # near-equal classes below the top-1 may swap places
                    by_name = {p["name"]: p["probability"] for p in theirs["predictions"]}
                    for p in mine["predictions"]:
                        assert abs(p["probability"] - by_name.get(
                            p["name"], min(by_name.values()))) <= 0.02, (name, p, by_name)
                else:
                    assert [p["name"] for p in mine["predictions"]] == \
                        [p["name"] for p in theirs["predictions"]]
                np.testing.assert_allclose([p["probability"] for p in mine["predictions"]],
                                           [p["probability"] for p in theirs["predictions"]],
                                           atol=0.02 if "float16" in name else 1e-4)
        else:
            assert same >= len(expected) - 1, name  # int8: within its bound on 20 images


def test_predict_benchmark_times_a_file(export, jpegs, capsys):
    export_dir, _ = export
    model = export_dir / f"smoke{FORMATS_SUFFIX}" / "1" / "model_int8.tflite"
    assert predict_main([str(jpegs / "00_red_circle.jpg"), "--model", str(model), "--benchmark",
                         "--benchmark_runs", "3"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("benchmark: batch 1, median ") and " ms over 3 runs (min " in last


def test_tf_servings_base_path_holds_only_its_versions_after_more_format_exports(
    export, tiny_two_head_model
):
    """Formats exported into the same export_dir go to <name>_formats/, never into <name>/;
    an int8 file below its bound is not published at all."""
    export_dir, _ = export
    base = export_dir / "smoke"
    before = sorted((root, sorted(files)) for root, _, files in os.walk(base))
    model = near_tie_model()
    images, labels = near_tie_images()
    data = formats.array_format_data(images, images, labels)
    lines = []
    folder, card = export_formats(model, export_dir, model_name="smoke", formats="litert",
                                  data=data, log=lines.append)
    assert folder == str(export_dir / f"smoke{FORMATS_SUFFIX}" / "2")
    assert card["files"]["model.tflite"]["agreement"]["top1_agreement"] == 1.0
    with pytest.raises(ExportError) as error:
        export_formats(model, export_dir, model_name="smoke", formats="litert,litert_int8",
                       data=data, log=lines.append)
    message = str(error.value)
    assert message.startswith("litert_int8 (model_int8.tflite) agrees on 50.00%, below "
                              "min_agreement_int8 97.0% of")
    assert "nothing was published" in message
    assert any(line.startswith("model_int8.tflite") and " 0.5000 " in line for line in lines)
    assert sorted(os.listdir(export_dir / f"smoke{FORMATS_SUFFIX}")) == ["1", "2"]
    assert sorted((root, sorted(files)) for root, _, files in os.walk(base)) == before
    assert existing_versions(str(base)) == [1] and os.listdir(base) == ["1"]
    assert sorted(os.listdir(export_dir)) == ["smoke", f"smoke{FORMATS_SUFFIX}"]


def test_the_int8_bound_is_an_option_the_refusal_names(tmp_path):
    """At its default bound (97%) the near-tie int8 file is refused, the message naming the
    option that lowers it; with `min_agreement_int8=0.5` the same file is published and its card
    records the bound it was held to."""
    model = near_tie_model()
    images, labels = near_tie_images()
    data = formats.array_format_data(images, images, labels)
    with pytest.raises(ExportError) as error:
        export_formats(model, tmp_path, formats="litert_int8", data=data, log=lambda line: None)
    assert "below min_agreement_int8 97.0%" in str(error.value)
    assert "lower the bound with --min_agreement_int8 X (export) or --set min_agreement_int8=X " \
        "(trainer)," in str(error.value)
    folder, card = export_formats(model, tmp_path, formats="litert,litert_int8", data=data,
                                  min_agreement_int8=0.5, log=lambda line: None)
    assert folder == str(tmp_path / f"inception_v3{FORMATS_SUFFIX}" / "1")
    facts = card["files"]
    assert facts["model_int8.tflite"]["min_top1_agreement"] == 0.5
    assert facts["model_int8.tflite"]["agreement"]["top1_agreement"] == 0.5
    assert facts["model.tflite"]["min_top1_agreement"] == 0.995


def near_tie_model():
    """A classifier whose two probabilities differ by under 1e-3: float files keep the order,
    int8's softmax output (steps of 1/256) cannot, and ties go to class 0."""
    images = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(images)
    dense = keras.layers.Dense(2, activation="softmax", name="predictions")
    model = keras.Model(images, dense(pooled))
    dense.set_weights([np.array([[1e-3, -1e-3], [0, 0], [0, 0]], np.float32), np.zeros(2, np.float32)])
    return model


def near_tie_images():
    """8x8 images, half with a positive mean red channel (class 0), half negative (class 1)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-0.5, 0.5, (40, 8, 8, 3)).astype(np.float32)
    images[:, :, :, 0] += np.where(np.arange(40) % 2 == 0, 0.5, -0.5)[:, None, None]
    return images, np.arange(40) % 2
