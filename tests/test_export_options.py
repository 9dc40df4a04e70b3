"""Export arguments: class names, top-k, image size, dtype policy, and the errors users get."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from inception_keras import build_inception_v3, imagenet_class_names, inference_model
from inception_keras.data.preprocessing import preprocess_for_eval
from inception_keras.export import ExportError, export_saved_model, read_class_names


def classifier(classes=3, size=32, activation="softmax", input_size=None):
    side = size if input_size is None else input_size
    image = keras.Input((side, side, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
    return keras.Model(image, keras.layers.Dense(classes, activation, name="predictions")(features))


def jpeg(height=50, width=40, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels).numpy()


def serve(path, images):
    return tf.saved_model.load(path).signatures["serving_default"](image_bytes=tf.constant(images))


def test_a_1000_class_model_gets_the_imagenet_names(tmp_path):
    result = serve(export_saved_model(classifier(1000), tmp_path), [jpeg()])
    names = [name for _, name in imagenet_class_names()]
    assert result["class_names"].shape == (1, 5)
    assert [n.decode() for n in result["class_names"].numpy()[0]] == [
        names[i] for i in result["classes"].numpy()[0]
    ]


def test_other_models_get_numbered_names_and_top_k_at_most_the_class_count(tmp_path):
    result = serve(export_saved_model(classifier(3), tmp_path), [jpeg()])
    assert sorted(result["class_names"].numpy()[0]) == [b"class_0", b"class_1", b"class_2"]


def test_class_names_come_from_the_training_image_folder(tmp_path):
    folder = tmp_path / "flowers"
    for name in ("zebra", "apple", "mango"):
        (folder / name).mkdir(parents=True)
    (folder / "notes.txt").write_text("not a class")
    names = read_class_names(str(folder))
    assert names == ["apple", "mango", "zebra"]
    result = serve(export_saved_model(classifier(3), tmp_path, class_names=names, top_k=3), [jpeg()])
    assert sorted(result["class_names"].numpy()[0]) == [b"apple", b"mango", b"zebra"]


def test_class_names_of_a_split_image_folder_come_from_train(tmp_path):
    for split, names in (("train", ("oak", "elm")), ("validation", ("oak", "elm"))):
        for name in names:
            (tmp_path / "trees" / split / name).mkdir(parents=True)
    assert read_class_names(str(tmp_path / "trees")) == ["elm", "oak"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no class sub-folders"):
        read_class_names(str(tmp_path / "empty"))


def test_class_names_from_a_text_file(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\n\ndog\nbird\n", encoding="utf-8")
    assert read_class_names(str(tmp_path / "labels.txt")) == ["cat", "dog", "bird"]
    with pytest.raises(ExportError, match="neither a text file nor an image folder"):
        read_class_names(str(tmp_path / "missing"))


def test_a_logits_model_is_served_probabilities(tmp_path):
    model = classifier(3, activation=None)
    path = export_saved_model(model, tmp_path)
    pixels = tf.random.uniform([2, 32, 32, 3], 0, 255, seed=1)
    result = tf.saved_model.load(path).signatures["predict_images"](images=pixels)["probabilities"]
    expected = tf.nn.softmax(model(pixels / 127.5 - 1))
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_a_model_of_any_input_size_needs_image_size(tmp_path):
    model = classifier(3, input_size=None, size=None)
    with pytest.raises(ExportError, match="pass image_size"):
        export_saved_model(model, tmp_path)
    path = export_saved_model(model, tmp_path, image_size=48)
    signature = tf.saved_model.load(path).signatures["predict_images"]
    assert signature.structured_input_signature[1]["images"].shape.as_list() == [None, 48, 48, 3]


@pytest.mark.parametrize(
    ("model_fn", "kwargs", "message"),
    [
        (lambda: classifier(3), {"class_names": ["a", "b"]}, "has 2 names but the model has 3"),
        (lambda: classifier(3), {"class_names": "abc"}, "sequence of strings"),
        (lambda: classifier(3), {"class_names": ["a", "b", 3]}, "sequence of strings"),
        (lambda: classifier(3), {"top_k": 0}, "top_k must be a positive integer"),
        (lambda: classifier(3), {"image_size": 64}, "does not match the model's input size 32"),
        (lambda: classifier(3), {"model_name": "../elsewhere"}, "plain folder name"),
        (lambda: classifier(3), {"export_dir": "nosuch://bucket/models"},
         "cannot create the model folder nosuch://bucket/models/inception_v3"),
        (lambda: keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3)]), {},
         "Export a classifier"),
        (lambda: keras.Sequential([keras.Input((32, 24, 3)), keras.layers.Flatten(),
                                   keras.layers.Dense(2)]), {}, "square images"),
        (lambda: "model.keras", {}, "must be a keras.Model"),
    ],
)
def test_user_errors_are_export_errors_that_say_what_to_do(tmp_path, model_fn, kwargs, message):
    with pytest.raises(ExportError, match=message):
        export_saved_model(model_fn(), kwargs.pop("export_dir", tmp_path), **kwargs)
    assert not any(name.isdigit() for _, dirs, _ in os.walk(tmp_path) for name in dirs)


def test_export_dir_that_is_a_file_is_an_export_error(tmp_path):
    (tmp_path / "saved_models").write_text("")
    with pytest.raises(ExportError, match="cannot create the model folder .*not a directory"):
        export_saved_model(classifier(3), tmp_path / "saved_models")


@pytest.mark.slow  # builds and exports an Inception-v3
def test_mixed_bfloat16_inception_serves_float32_keras_answers(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")  # as the trainer leaves it when it exports
    try:
        keras.utils.set_random_seed(0)
        model = build_inception_v3(input_shape=(75, 75, 3), classes=5, depth_multiplier=0.1)
        path = export_saved_model(model, tmp_path, top_k=2)
    finally:
        keras.config.set_dtype_policy("float32")
    loaded = tf.saved_model.load(path)
    images = [jpeg(90, 120, seed) for seed in range(3)]
    result = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
    assert result["probabilities"].dtype == tf.float32
    pixels = loaded.signatures["predict_images"].structured_input_signature[1]["images"]
    assert pixels.dtype == tf.float32
    batch = tf.stack([preprocess_for_eval(image, 75) for image in images])
    expected = tf.cast(inference_model(model)(batch, training=False), tf.float32).numpy()
    np.testing.assert_array_equal(result["classes"].numpy()[:, 0], expected.argmax(axis=1))
    np.testing.assert_allclose(result["probabilities"].numpy()[:, 0], expected.max(axis=1), atol=1e-2)


def test_a_bfloat16_head_is_served_float32(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        plain = classifier(3)  # its head computes in bfloat16
        plain_path = export_saved_model(plain, tmp_path, model_name="plain")
    finally:
        keras.config.set_dtype_policy("float32")
    assert plain.outputs[0].dtype == "bfloat16"
    signatures = tf.saved_model.load(plain_path).signatures
    probabilities = signatures["predict_images"](images=tf.zeros([1, 32, 32, 3]))["probabilities"]
    assert probabilities.dtype == tf.float32
    np.testing.assert_allclose(probabilities.numpy().sum(), 1.0, atol=1e-2)
    served = signatures["serving_default"](image_bytes=tf.constant([jpeg()]))["probabilities"]
    assert served.dtype == tf.float32
