"""Format names, runtime checks, agreement arithmetic and the data of `export.formats` (fast).

The conversions themselves run in the slow tier (test_export_formats.py, at smoke size, and
test_export_formats_full_size.py); here nothing is converted.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import sys

import numpy as np
import pytest

from inception_keras.export import ExportError, formats
from inception_keras.export.formats.agreement import below_bound
from inception_keras.export.formats.data import class_ids


def test_format_names_parse_in_one_order_and_unknown_ones_are_named():
    assert formats.FORMATS == ("savedmodel", "litert", "litert_float16", "litert_int8", "onnx")
    assert formats.parse_formats("onnx, savedmodel,litert") == ("savedmodel", "litert", "onnx")
    assert formats.parse_formats(["litert_int8", "litert_int8"]) == ("litert_int8",)
    for bad in ("savedmodel,tflite", "", ",", 3):
        with pytest.raises(ExportError) as error:
            formats.parse_formats(bad)
        assert "savedmodel, litert, litert_float16, litert_int8, onnx" in str(error.value)
    with pytest.raises(ExportError, match="'tflite'"):
        formats.parse_formats("savedmodel,tflite")


def test_every_file_format_needs_data_and_has_its_bound():
    assert not formats.needs_data("savedmodel")
    for name in formats.FORMATS[1:]:
        assert formats.needs_data(f"savedmodel,{name}")
    bounds = {f.file_name: f.min_agreement for f in formats.file_formats(formats.FORMATS)}
    assert bounds == {"model.tflite": 0.995, "model_float16.tflite": 0.995,
                      "model_int8.tflite": 0.97, "model.onnx": 0.995}


def test_installed_runtimes_pass_and_hidden_ones_are_refused_in_one_line(monkeypatch):
    formats.require_runtimes(formats.FORMATS)  # the test extra installs the deploy extra
    formats.require_runtimes("savedmodel")
    for module in ("onnxruntime", "ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, module, None)  # `import` now fails for real
    with pytest.raises(ExportError) as error:
        formats.require_runtimes("savedmodel,litert_int8,onnx")
    message = str(error.value)
    assert "\n" not in message
    assert "litert_int8, onnx need ai-edge-litert and onnxruntime" in message
    assert 'pip install -e ".[deploy]"' in message
    formats.require_runtimes("savedmodel")  # needs neither


def test_labels_are_class_ids_or_one_hot_rows():
    np.testing.assert_array_equal(class_ids(np.array([2, 0, 1])), [2, 0, 1])
    np.testing.assert_array_equal(class_ids(np.eye(3, dtype=np.float32)[[1, 1, 2]]), [1, 1, 2])
    with pytest.raises(ExportError, match="shape"):
        class_ids(np.zeros((2, 2, 2)))


def test_array_data_is_cut_to_its_counts_in_batches():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) * np.ones((1, 2, 2, 3))
    data = formats.array_format_data(images[:7], images, np.arange(10) % 3, batch_size=4)
    assert [len(b) for b in data.calibration_batches()] == [4, 3]
    short = formats.FormatData(data.calibration, data.agreement, calibration_examples=5,
                               agreement_examples=6)
    assert [len(b) for b in short.calibration_batches()] == [4, 1]
    batches = list(short.agreement_batches())
    assert [len(labels) for _, labels in batches] == [4, 2]
    assert batches[1][1].tolist() == [1, 2] and batches[1][0].dtype == np.float32
    with pytest.raises(ExportError, match="10 images but agreement_labels 9"):
        formats.array_format_data(images, images, np.arange(9))


def test_agreement_counts_top1_accuracy_and_the_largest_probability_difference():
    keras_probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4],
                                    [0.5, 0.4, 0.1]], np.float32)
    file_probabilities = keras_probabilities.copy()
    file_probabilities[3] = [0.4, 0.5, 0.1]  # top-1 flips on the last image
    file_probabilities[2] = [0.3, 0.25, 0.45]
    labels = np.array([0, 1, 0, 1])
    lookup = {image: row for image, row in enumerate(keras_probabilities)}
    images = np.arange(4, dtype=np.float32)  # stand-ins: the callables look rows up by value
    batches = [(images[:3], labels[:3]), (images[3:], labels[3:])]
    result = formats.measure_agreement(
        lambda x: np.stack([lookup[int(i)] for i in x]),
        {"file": lambda x: file_probabilities[x.astype(int)]},
        batches,
    )["file"]
    assert result.images == 4
    assert result.top1_agreement == 0.75
    assert result.keras_top1_accuracy == 0.5  # 0 and 1 right; 2 (says 2) and 3 (says 0) wrong
    assert result.top1_accuracy == 0.75  # the file gets image 3 right
    assert result.max_abs_probability_difference == pytest.approx(0.1, abs=1e-6)
    assert below_bound({"file": result}, {"file": 0.97}) == [("file", 0.75, 0.97)]
    assert below_bound({"file": result}, {"file": 0.75}) == []
    with pytest.raises(ExportError, match="no images"):
        formats.measure_agreement(lambda x: x, {"file": lambda x: x}, [])


def test_a_folder_dataset_is_calibrated_on_images_spread_over_its_classes(
    tmp_path, write_image_folder
):
    names = ("a", "b", "c")
    root = write_image_folder(tmp_path / "folder", names, 10, 2)
    data = formats.dataset_format_data(f"folder:{root}", None, 16, calibration_examples=6)
    calibration = np.concatenate(list(data.calibration_batches()))
    assert len(calibration) == 6
    full_channel = calibration.mean(axis=(1, 2)).argmax(axis=-1)  # the class's saturated colour
    assert sorted(set(full_channel.tolist())) == [0, 1, 2]
    agreement = list(data.agreement_batches())
    assert sum(len(labels) for _, labels in agreement) == 6  # all of the 3 x 2 validation images
    assert sorted(np.concatenate([labels for _, labels in agreement]).tolist()) == [0, 0, 1, 1, 2, 2]
    assert data.description == {"dataset": f"folder:{root}", "calibration_split": "train",
                                "agreement_split": "validation"}


def test_a_run_dir_without_config_or_checkpoint_is_refused(tmp_path):
    from inception_keras.training.run_model import load_run_model

    with pytest.raises(ExportError, match="has no config.json"):
        load_run_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"dataset": "synthetic", "image_size": 75}))
    with pytest.raises(ExportError, match="--model: no checkpoint in .*checkpoints; train first"):
        load_run_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"not_a_key": 1}))
    with pytest.raises(ExportError, match="unknown config key"):
        load_run_model(str(tmp_path))


def test_the_files_are_converted_from_a_float32_single_output_copy(tiny_two_head_model):
    """A two-output model built under mixed_bfloat16 with the trainer's fused batch norm: its
    deploy model computes in float32 with Keras' own layers, on the same weights."""
    import keras
    import tensorflow as tf

    from inception_keras.training.step.fused_batch_norm import with_fused_batch_norm

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = with_fused_batch_norm(tiny_two_head_model(classes=3, size=16))
    finally:
        keras.config.set_dtype_policy(policy)
    model.get_layer("bn").moving_mean.assign([0.1, -0.2, 0.3, 0.0])  # not the initial values
    network, spec = formats.deploy_model(model, class_names=["a", "b", "c"])
    assert spec.class_names == ("a", "b", "c") and spec.image_size == 16
    copy = network.layers[1]  # inside the wrapper: images -> copy -> {"probabilities"}
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    batch_norm = copy.get_layer("bn")
    assert type(batch_norm) is keras.layers.BatchNormalization
    np.testing.assert_allclose(batch_norm.moving_mean, [0.1, -0.2, 0.3, 0.0])
    assert [w.name for w in network.weights] == [w.name for w in model.weights
                                                 if "aux_predictions" not in w.path]
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    probabilities = network(images)["probabilities"]
    assert probabilities.dtype == tf.float32 and probabilities.shape == (2, 3)
    expected = model(images, training=False)["predictions"]  # bfloat16 maths: close, not equal
    np.testing.assert_allclose(probabilities, tf.cast(expected, tf.float32), atol=0.02)


def test_the_export_library_imports_nothing_of_training():
    """Training imports the export; the export takes a model and its metadata, so none of its
    modules imports inception_keras.training (not even inside a function). Only the CLI entry
    (`__main__`) loads a run's model through training."""
    import ast

    import inception_keras.export as package

    root = os.path.dirname(package.__file__)
    offending = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not name.endswith(".py") or path == os.path.join(root, "__main__.py"):
                continue
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                else:
                    continue
                offending += [f"{os.path.relpath(path, root)}: {module}" for module in modules
                              if module.startswith("inception_keras.training")]
    assert len(os.listdir(os.path.join(root, "formats"))) > 5  # the walk saw the package
    assert offending == []


@pytest.mark.parametrize("flag, value", [("--min_agreement_int8", "1.5"),
                                         ("--min_agreement_float", "-0.1")])
def test_an_agreement_bound_outside_0_1_is_refused_in_one_line(flag, value, capsys, tmp_path):
    from inception_keras.export.__main__ import main

    out = tmp_path / "out"
    assert main(["--model", str(tmp_path / "m.keras"), "--export_dir", str(out), flag,
                 value]) == 2
    error = capsys.readouterr().err
    assert error == f"error: {flag} must be a share in [0, 1] (e.g. 0.97), got {float(value)!r}.\n"
    assert not out.exists()
    assert formats.agreement_bounds(0.9, 0.5) == {"min_agreement_float": 0.9,
                                                  "min_agreement_int8": 0.5}
