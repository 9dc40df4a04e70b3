"""The full-size Inception-v3 (299x299, 1000 classes) exports to every file format (slow tier).

Random weights: the float files are held to their agreement bound through `export_formats`;
int8's agreement with an untrained network says nothing (its saturated logits flip under
quantization), so the int8 file (here with integer input and output, `int8_io`) is converted
and run without the export's bound.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from inception_keras import build_inception_v3
from inception_keras.export import export_formats, formats
from inception_keras.export.formats.deploy_model import deploy_model
from inception_keras.export.formats.litert import convert_litert, write_converter_source
from inception_keras.imagenet_classes import imagenet_label_names

pytestmark = pytest.mark.slow

MB = 1e6


@pytest.fixture(scope="module")
def model():
    return build_inception_v3(weights=None)  # canonical, with its auxiliary head, as trained


def test_full_size_float_files_export_with_their_card(model, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, 299, 299, 3)).astype(np.float32)
    data = formats.array_format_data(images[:1], images, np.arange(4))
    folder, card = export_formats(model, tmp_path, formats="savedmodel,litert,litert_float16,onnx",
                                  data=data, source={"keras_file": None}, log=lambda line: None)
    assert folder == str(tmp_path / "inception_v3_formats" / "1")
    assert not (tmp_path / "inception_v3").exists()  # savedmodel is export_saved_model's job
    assert card["input"]["shape"] == [None, 299, 299, 3] and card["num_classes"] == 1000
    with open(os.path.join(folder, "labels.txt"), encoding="utf-8") as f:
        assert tuple(f.read().splitlines()) == imagenet_label_names()
    sizes = {name: facts["bytes"] / MB for name, facts in card["files"].items()}
    assert 90 < sizes["model.tflite"] < 100 and 90 < sizes["model.onnx"] < 100  # 23.9M float32
    assert 45 < sizes["model_float16.tflite"] < 50
    for name, facts in card["files"].items():
        assert facts["agreement"]["images"] == 4
        assert facts["agreement"]["top1_agreement"] == 1.0, name


def test_full_size_int8_file_with_integer_input_and_output_converts_and_runs(model, tmp_path):
    network, _ = deploy_model(model)
    source = write_converter_source(network, str(tmp_path / "source"))
    rng = np.random.default_rng(1)
    calibration = rng.uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)
    content = convert_litert(source, "litert_int8", calibration_images=lambda: [calibration],
                             int8_io=True)
    assert 23 < len(content) / MB < 27
    path = tmp_path / "model_int8.tflite"
    path.write_bytes(content)
    runner = formats.load_runner(str(path))
    assert (runner.image_size, runner.num_classes) == (299, 1000)
    assert runner.input_dtype == runner.output_dtype == "int8"
    scale, zero_point = runner.input_quantization  # calibrated on [-1, 1]: 256 steps of ~2/255
    assert scale == pytest.approx(2 / 255, rel=0.02) and abs(zero_point) <= 1
    assert runner.output_quantization == (1 / 256, -128)  # int8 softmax
    probabilities = runner(calibration)
    assert probabilities.shape == (2, 1000)
    # int8 softmax outputs come in steps of 1/256, so 1000 near-uniform classes round to 0 or 1/256
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    assert np.all(probabilities.sum(axis=-1) <= 1.01) and np.all(probabilities.max(axis=-1) > 0)
