"""`python -m inception_keras.predict`: classify files with an export or an ImageNet weights file."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import shutil
import sys

import numpy as np
import pytest
from conftest import run_module
import tensorflow as tf

from inception_keras import build_inception_v3, inference_model
from inception_keras.data.preprocessing import preprocess_for_eval
from inception_keras.export import export_saved_model
from inception_keras.imagenet_classes import imagenet_label_names
from inception_keras.predict import main

SIZE = 32
CLASS_NAMES = ("red", "green", "blue")


def run_cli(*args):
    return run_module("inception_keras.predict", *args)


@pytest.fixture(scope="module")
def model(tiny_two_head_model):
    """A small two-output classifier shaped like build_inception_v3's (fast to export)."""
    return tiny_two_head_model(classes=len(CLASS_NAMES), size=SIZE)


@pytest.fixture(scope="module")
def export(model, tmp_path_factory):
    """A tiny export with top_k=2: its version folder (`.../tiny/1`)."""
    return export_saved_model(
        model, tmp_path_factory.mktemp("saved_models"), model_name="tiny",
        class_names=CLASS_NAMES, top_k=2,
    )


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder with a JPEG, a PNG, a text file named .jpg, and a note that is not an image."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (60, 80, 3)).astype(np.uint8)
    (folder / "b.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    (folder / "a.png").write_bytes(tf.io.encode_png(pixels[::-1]).numpy())
    (folder / "README.txt").write_text("not an image")
    (folder / "x.jpg").write_text("text named x.jpg")
    return folder


def expected_top(model, path, k):
    """Top-k (index, probability) of the in-memory model on the eval preprocessing of `path`."""
    image = preprocess_for_eval(tf.io.read_file(str(path)), SIZE)
    probabilities = inference_model(model)(image[None], training=False).numpy()[0]
    best = np.argsort(-probabilities)[:k]
    return [(int(i), float(probabilities[i])) for i in best]


@pytest.mark.slow
def test_cli_classifies_with_a_version_folder_and_names_a_missing_file(export, images, model):
    good = str(images / "b.jpg")
    missing = str(images / "missing.jpg")
    result = run_cli(good, missing, "--model", export)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"{missing}: no such file" in result.stderr.splitlines()
    lines = result.stdout.splitlines()
    assert lines[0] == good and len(lines) == 3  # the file, then its top 2 (the export's top_k)
    for line, (index, probability) in zip(lines[1:], expected_top(model, good, 2)):
        assert line == f"  {probability:.4f}  {CLASS_NAMES[index]} ({index})"


def test_base_folder_uses_its_highest_version_and_json(export, images, model, tmp_path, capsys):
    base = tmp_path / "tiny"
    shutil.copytree(export, base / "2")
    shutil.copytree(export, base / "10")
    (base / "11").mkdir()  # no saved_model.pb: not a version TF Serving would load
    (base / ".incomplete-x").mkdir()
    assert main([str(images / "a.png"), "--model", str(base), "--json", "--top_k", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["model"] == str(base / "10") and document["errors"] == []
    (result,) = document["results"]
    assert result["file"] == str(images / "a.png")
    ((index, probability),) = expected_top(model, images / "a.png", 1)
    assert result["predictions"] == [
        {"class": index, "name": CLASS_NAMES[index], "probability": pytest.approx(probability, abs=1e-5)}
    ]


def test_folders_expand_to_their_images_and_bad_files_are_named(export, images, capsys):
    assert main([str(images), "--model", export, "--json"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert [r["file"] for r in document["results"]] == [str(images / "a.png"), str(images / "b.jpg")]
    assert all(len(r["predictions"]) == 2 for r in document["results"])
    x_jpg = str(images / "x.jpg")
    assert document["errors"] == [
        {"file": x_jpg, "error": "not an image TensorFlow can decode (JPEG, PNG, GIF, BMP, WebP)"}
    ]
    assert captured.err.splitlines() == [f"{x_jpg}: {document['errors'][0]['error']}"]


def test_empty_folder_and_more_classes_than_exported(export, images, tmp_path, capsys):
    assert main([str(tmp_path), str(images / "b.jpg"), "--model", export, "--top_k", "9"]) == 1
    captured = capsys.readouterr()
    assert f"{tmp_path}: folder has no image files" in captured.err
    assert "note: the SavedModel returns its top 2 classes" in captured.err
    assert len(captured.out.splitlines()) == 3


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "{tmp}/nothing"], "error: --model {tmp}/nothing: no such file or folder"),
        (["--model", "{tmp}"], "error: --model {tmp}: folder holds neither a SavedModel"),
        (["--model", "{tmp}/notes.txt"], "error: --model {tmp}/notes.txt: expected a SavedModel"),
        (["--model", "{tmp}/bad.weights.h5"], "error: --model {tmp}/bad.weights.h5: not a readable"),
        (["--model", "{tmp}/other.weights.h5"], "error: --model {tmp}/other.weights.h5: not the weights"),
        (["--model", "{export}", "--top_k", "0"], "error: --top_k must be a positive integer"),
        (["--model", "{tmp}/bad.tflite"], "error: --model {tmp}/bad.tflite: not a classifier its "
         "runtime can load"),
        (["--model", "{tmp}/bad.onnx"], "error: --model {tmp}/bad.onnx: not a classifier its "
         "runtime can load"),
        (["--model", "{export}", "--benchmark", "--benchmark_runs", "0"],
         "error: --benchmark_runs must be a positive integer"),
    ],
)
def test_bad_model_or_top_k_is_one_error_line(
    arguments, message, export, images, tmp_path, capsys, tiny_two_head_model
):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad.weights.h5").write_text("not hdf5")
    (tmp_path / "bad.tflite").write_text("not a flatbuffer")
    (tmp_path / "bad.onnx").write_text("not a protobuf")
    if "other.weights.h5" in arguments[1]:  # weights of a 3-class model
        tiny_two_head_model(classes=3, size=SIZE).save_weights(tmp_path / "other.weights.h5")
    arguments = [a.format(tmp=tmp_path, export=export) for a in arguments]
    assert main([str(images / "b.jpg"), *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(message.format(tmp=tmp_path)), captured.err


def test_a_file_whose_runtime_is_missing_names_the_package(tmp_path, capsys, monkeypatch):
    (tmp_path / "model.onnx").write_text("never read")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    assert main(["a.jpg", "--model", str(tmp_path / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: --model {tmp_path}/model.onnx: running .onnx files needs "
                          'onnxruntime, not installed: pip install -e ".[deploy]"')


def test_benchmark_prints_the_median_batch1_latency(export, images, capsys):
    assert main([str(images / "b.jpg"), "--model", export, "--benchmark",
                 "--benchmark_runs", "3"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("benchmark: batch 1, median ") and " ms over 3 runs (min " in last
    assert last.endswith(f" ms), {images / 'b.jpg'}: decode, preprocess, model, top-k")
    assert main([str(images / "b.jpg"), "--model", export, "--benchmark", "--benchmark_runs", "2",
                 "--json"]) == 0
    timing = json.loads(capsys.readouterr().out)["benchmark"]
    assert timing["runs"] == 2 and timing["batch"] == 1 and timing["file"] == str(images / "b.jpg")
    assert 0 < timing["min_ms"] <= timing["median_ms"]


def test_top_k_that_is_not_a_number(export, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["a.jpg", "--model", export, "--top_k", "five"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--top_k: invalid int value" in err


@pytest.mark.slow  # a full-size Inception-v3 (24M parameters) saved, rebuilt and run at 299
def test_imagenet_weights_file(images, tmp_path, capsys):
    full = build_inception_v3(include_aux=False, weights=None)
    path = str(tmp_path / "imagenet.weights.h5")
    full.save_weights(path)
    good = images / "b.jpg"
    assert main([str(good), "--model", path, "--top_k", "3", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    image = preprocess_for_eval(tf.io.read_file(str(good)), 299)
    probabilities = full(image[None], training=False).numpy()[0]
    best = np.argsort(-probabilities)[:3]
    names = imagenet_label_names()
    assert [p["class"] for p in result["predictions"]] == [int(i) for i in best]
    assert [p["name"] for p in result["predictions"]] == [names[i] for i in best]
    got = [p["probability"] for p in result["predictions"]]
    np.testing.assert_allclose(got, probabilities[best], rtol=1e-4)
