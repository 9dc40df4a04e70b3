import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data import DataError, dataset_info, folder_dataset
from inception_keras.data.folder import folder_files

SIZE = 12


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def flat_folder(tmp_path, encoded_image):
    """cat: 10 RGB JPEGs + 1 PNG; dog: 10 grayscale JPEGs; plus files that are not images."""
    root = tmp_path / "images"
    for i in range(10):
        _write(root / "cat" / f"{i:02d}.jpg", encoded_image(20, 16, value=40))
        _write(root / "dog" / f"{i:02d}.JPEG", encoded_image(16, 20, value=220, channels=1))
    _write(root / "cat" / "10.png", encoded_image(18, 18, value=40, image_format="png"))
    _write(root / "cat" / "notes.txt", b"not an image")
    _write(root / "README", b"not a class")
    return str(root)


def test_classes_come_from_sorted_folder_names(flat_folder):
    info = dataset_info(f"folder:{flat_folder}", None)
    assert info.class_names == ("cat", "dog") and info.num_classes == 2
    # every 10th image per class is held out: cat has 11, dog 10
    assert (info.num_train_examples, info.num_eval_examples) == (19, 2)


def test_jpeg_png_and_grayscale_images_are_read_with_their_labels(flat_folder):
    examples = list(folder_dataset(flat_folder, "train", image_size=SIZE, is_training=False))
    assert len(examples) == 19
    for image, label in examples:
        assert image.shape == (SIZE, SIZE, 3) and label.shape == () and label.dtype == tf.int32
        expected = 40 if int(label) == 0 else 220  # grayscale dog images come out grey RGB
        assert np.allclose(image, expected / 127.5 - 1.0, atol=0.05)


def test_split_folders_layout(tmp_path, encoded_image):
    root = tmp_path / "split"
    for split, count in (("train", 3), ("validation", 2)):
        for name in ("b", "a"):
            for i in range(count):
                _write(root / split / name / f"{i}.jpg", encoded_image(10, 10))
    paths, labels = folder_files(str(root), "validation")
    assert len(paths) == 4 and labels == [0, 0, 1, 1]
    assert all("/validation/" in path for path in paths)
    dataset = folder_dataset(str(root), "train", image_size=SIZE, is_training=True, seed=0)
    assert dataset.element_spec[1] == tf.TensorSpec([], tf.int32)
    labels = [int(label) for _, label in dataset.take(7)]  # training repeats
    assert len(labels) == 7 and set(labels) == {0, 1}


def test_two_input_pipelines_read_disjoint_files(flat_folder):
    context = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i) for i in (0, 1)]
    counts = [
        len(
            list(
                folder_dataset(flat_folder, "train", image_size=SIZE, is_training=False, input_context=c)
            )
        )
        for c in context
    ]
    assert counts == [10, 9]


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}/missing.*<root>/<class_name>"):
        dataset_info(f"folder:{tmp_path}/missing", None)


def test_folder_without_class_folders_is_an_error(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no class sub-folders"):
        folder_dataset(str(tmp_path), "train", image_size=SIZE, is_training=True)


def test_folder_without_images_is_an_error(tmp_path):
    _write(tmp_path / "cat" / "a.txt", b"text")
    with pytest.raises(DataError, match=f"{tmp_path}.*no train images.*jpg"):
        folder_dataset(str(tmp_path), "train", image_size=SIZE, is_training=True)


def test_validation_class_unknown_to_train_is_an_error(tmp_path, encoded_image):
    _write(tmp_path / "train" / "cat" / "a.jpg", encoded_image(8, 8))
    _write(tmp_path / "validation" / "cow" / "a.jpg", encoded_image(8, 8))
    with pytest.raises(DataError, match="cow"):
        folder_files(str(tmp_path), "validation")


def test_missing_validation_folder_is_an_error(tmp_path, encoded_image):
    _write(tmp_path / "train" / "cat" / "a.jpg", encoded_image(8, 8))
    with pytest.raises(DataError, match="no validation/ folder"):
        folder_files(str(tmp_path), "validation")
