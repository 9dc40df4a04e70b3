import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from inception_keras.data import DataError, dataset_info, make_input_fn, tfds_dataset

SIZE = 16


def _train_input_fn(dataset, **options):
    return make_input_fn(dataset, data_dir=None, split="train", image_size=SIZE,
                         global_batch_size=4, is_training=True, **options)


@pytest.fixture
def mock_tfds():
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


def test_mnist_grayscale_png_images(mock_tfds):
    examples = list(tfds_dataset("mnist", "validation", image_size=SIZE, is_training=False))
    assert len(examples) == 6
    for image, label in examples:
        assert image.shape == (SIZE, SIZE, 3) and label.shape == () and 0 <= int(label) < 10
        assert float(tf.reduce_max(tf.abs(image))) <= 1.0
        assert np.allclose(image[..., 0], image[..., 1])  # grey stays grey in RGB


def test_imagenet2012_jpegs_and_names(mock_tfds):
    info = dataset_info("tfds:imagenet2012", None)
    assert info.num_classes == 1000 and info.class_names[0] == "tench, Tinca tinca"
    images, labels = next(iter(_train_input_fn("tfds:imagenet2012", seed=0)(None)))
    assert images.shape == (4, SIZE, SIZE, 3) and labels.shape == (4,)
    assert labels.dtype == tf.int32 and np.all((labels.numpy() >= 0) & (labels.numpy() < 1000))


def test_input_context_is_passed_to_tfds(mock_tfds):
    context = tf.distribute.InputContext(
        num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2
    )
    images, _ = next(iter(_train_input_fn("tfds:mnist")(context)))
    assert images.shape == (2, SIZE, SIZE, 3)


def test_unknown_dataset_is_an_error():
    with pytest.raises(DataError, match="unknown TFDS dataset 'no_such_dataset_xyz'"):
        dataset_info("tfds:no_such_dataset_xyz", None)


def test_dataset_that_is_not_image_classification_is_an_error(mock_tfds):
    with pytest.raises(DataError, match="imdb_reviews"):
        tfds_dataset("imdb_reviews", "train", image_size=SIZE, is_training=True)

