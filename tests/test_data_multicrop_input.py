"""make_input_fn(..., eval_crops=10 | 12 | 144): every crop of each evaluation image in one example."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from inception_keras.data import (
    DataError,
    ExampleOptions,
    corrupt_records_seen,
    make_input_fn,
    serialize_example,
)
from inception_keras.data.multicrop import multi_crop

SIZE = 16
SHAPES = ((20, 24), (24, 20), (22, 22), (30, 21), (21, 25))


@pytest.fixture
def images(encoded_image):
    return [encoded_image(height, width) for height, width in SHAPES]


def _input_fn(data_dir, crops, **overrides):
    arguments = dict(data_dir=data_dir, split="validation", image_size=SIZE, global_batch_size=2,
                     is_training=False, num_classes=3, eval_crops=crops)
    return make_input_fn("imagenet_tfrecord", **{**arguments, **overrides})


def _records(images):
    return [serialize_example(image, 1 + i % 3, height=1, width=1) for i, image in enumerate(images)]


@pytest.mark.parametrize("crops", [10, 12, 144])
def test_each_example_is_multi_crop_of_its_image_and_padding_matches(images, write_shards, crops):
    data_dir = write_shards("validation", [_records(images)])
    dataset = _input_fn(data_dir, crops, masked=True)(None)
    assert dataset.element_spec[0].shape == (2, crops, SIZE, SIZE, 3)
    batches = list(dataset.take(4))  # 5 images, then zero-weight padding
    got = np.concatenate([batch_images.numpy() for batch_images, _, _ in batches])
    weights = np.concatenate([batch_weights.numpy() for _, _, batch_weights in batches])
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels, _ in batches])
    assert weights.tolist() == [1.0] * 5 + [0.0] * 3
    for index, image in enumerate(images):
        np.testing.assert_array_equal(got[index], multi_crop(image, SIZE, crops).numpy())
        assert labels[index] == index % 3
    assert not got[5:].any() and not labels[5:].any()


def test_corrupt_records_are_dropped_from_multi_crop_input(images, write_shards):
    records = _records(images[:3])
    data_dir = write_shards("validation", [[records[0], b"garbage", records[1], records[2]]])
    before = corrupt_records_seen()
    batches = list(_input_fn(data_dir, 10, global_batch_size=1)(None))
    assert [batch_images.shape for batch_images, _ in batches] == [(1, 10, SIZE, SIZE, 3)] * 3
    assert corrupt_records_seen() - before == 1


def test_multi_crop_input_is_not_cached(images, write_shards, tmp_path):
    data_dir = write_shards("validation", [_records(images)])
    cache = tmp_path / "cache"
    assert len(list(_input_fn(data_dir, 10, cache_dir=str(cache))(None))) == 2
    assert not cache.exists()  # 10 or 144 times the single-crop size


def test_synthetic_multi_crop_input():
    input_fn = make_input_fn("synthetic", data_dir=None, split="validation", image_size=SIZE,
                             global_batch_size=2, is_training=False, eval_crops=10)
    assert input_fn(None).element_spec[0].shape == (2, 10, SIZE, SIZE, 3)


@pytest.mark.parametrize(
    "crops,is_training,match",
    [
        (10, True, "eval_crops=10 is for evaluation"),
        (7, False, r"eval_crops must be one of \(1, 10, 12, 144\)"),
        (True, False, "eval_crops must be one of"),
    ],
)
def test_bad_eval_crops_are_errors(tmp_path, crops, is_training, match):
    with pytest.raises(DataError, match=match):
        _input_fn(str(tmp_path), crops, is_training=is_training)


def test_example_options_image_shape():
    assert ExampleOptions(image_size=8, is_training=False).image_shape == [8, 8, 3]
    assert ExampleOptions(image_size=8, is_training=False, eval_crops=144).image_shape == [
        144, 8, 8, 3
    ]
