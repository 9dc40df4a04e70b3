"""The full-size Inception-v3 (299x299, 1000 classes) exports to every file format (slow tier).

Random weights: the float files are held to their agreement bound through `export_formats`.
An untrained network's top class hardly depends on the image, so for the int8 file (here with
integer input and output, `int8_io`) the classifier is set to one whose answer does
(`image_dependent_classifier`): the file must then give the float model's class on the images it
classifies confidently, spread over several classes, which a file returning garbage cannot.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from inception_keras import build_inception_v3
from inception_keras.data.smoke_images import draw_image
from inception_keras.export import export_formats, formats
from inception_keras.export.formats.deploy_model import deploy_model
from inception_keras.export.formats.litert import convert_litert, write_converter_source
from inception_keras.imagenet_classes import imagenet_label_names

pytestmark = pytest.mark.slow

MB = 1e6


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)  # the int8 test's classes follow from these random weights
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


CLASSES = np.array([0, 250, 500, 750, 999])  # the classes the int8 test's classifier uses


def smoke_images_at_full_size(count, seed=2):
    """Smoke-set drawings of every hue, preprocessed to [-1, 1] at 299x299."""
    rng = np.random.default_rng(seed)
    return np.stack([tf.image.resize(draw_image(i % 10, rng), (299, 299)).numpy() / 127.5 - 1
                     for i in range(count)]).astype(np.float32)


def image_dependent_classifier(model, images, sharpness=20.0):
    """Sets `model`'s classifier so that its class depends on the image.

    A random network's pooled features vary between images mostly along one direction (their
    first principal component): z = the image's standardised coordinate along it. Class
    CLASSES[k] scores -sharpness (z - centre_k)^2 up to a constant, linear in the features, with
    centres at the 10/30/50/70/90% quantiles of the images' z: each image goes to its nearest
    centre, confidently, and no other class can win (bias -30).
    """
    features = keras.Model(model.inputs, model.get_layer("avg_pool").output).predict(
        images, verbose=0)
    mean = features.mean(0)
    direction = np.linalg.svd(features - mean, full_matrices=False)[2][0]
    sigma = ((features - mean) @ direction).std()
    centres = np.quantile((features - mean) @ direction / sigma, [0.1, 0.3, 0.5, 0.7, 0.9])
    dense = model.get_layer("predictions")
    kernel, bias = dense.get_weights()
    kernel, bias = np.zeros_like(kernel), np.full_like(bias, -30.0)
    kernel[:, CLASSES] = 2 * sharpness * np.outer(direction / sigma, centres)
    bias[CLASSES] = -2 * sharpness * centres * (mean @ direction) / sigma - sharpness * centres ** 2
    dense.set_weights([kernel, bias])


def test_full_size_int8_file_with_integer_input_and_output_predicts_as_the_float_model(
        model, tmp_path):
    images = smoke_images_at_full_size(20)
    dense = model.get_layer("predictions")
    original = dense.get_weights()
    try:
        image_dependent_classifier(model, images)
        network, _ = deploy_model(model)
        reference = network.predict(images, verbose=0)["probabilities"]
        source = write_converter_source(network, str(tmp_path / "source"))
        content = convert_litert(source, "litert_int8",
                                 calibration_images=lambda: [images[:10], images[10:]],
                                 int8_io=True)
    finally:
        dense.set_weights(original)  # the module's model stays the canonical random one
    assert 23 < len(content) / MB < 27
    path = tmp_path / "model_int8.tflite"
    path.write_bytes(content)
    runner = formats.load_runner(str(path))
    assert (runner.image_size, runner.num_classes) == (299, 1000)
    assert runner.input_dtype == runner.output_dtype == "int8"
    scale, zero_point = runner.input_quantization  # calibrated on [-1, 1]: 256 steps of ~2/255
    assert scale == pytest.approx(2 / 255, rel=0.02) and abs(zero_point) <= 1
    assert runner.output_quantization == (1 / 256, -128)  # int8 softmax
    probabilities = runner(images)
    assert probabilities.shape == (20, 1000)
    assert probabilities.min() >= 0 and np.all(probabilities.sum(axis=-1) <= 1.01)
    # the float model's confident answers are spread over the classes: no constant answer (nor
    # a random one) reaches the agreement asked for
    confident = reference.max(axis=-1) > 0.9
    answers = reference.argmax(axis=-1)[confident]
    assert confident.sum() >= 8 and set(answers) <= set(CLASSES.tolist())
    assert len(set(answers)) >= 4 and np.bincount(answers).max() <= confident.sum() / 2
    agreement = np.mean(probabilities.argmax(axis=-1)[confident] == answers)
    assert agreement >= 0.9, (agreement, answers, probabilities.argmax(axis=-1)[confident])
