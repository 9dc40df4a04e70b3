"""Shared fixtures: tiny encoded images and ImageNet-format TFRecord shards written by the tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf


def _encode(image, image_format):
    if image_format == "png":
        return tf.io.encode_png(image).numpy()
    return tf.io.encode_jpeg(image, quality=95).numpy()


@pytest.fixture
def encoded_image():
    """encoded_image(height, width, value=None, channels=3, image_format='jpeg') -> bytes."""

    def make(height, width, value=None, channels=3, image_format="jpeg"):
        rng = np.random.default_rng(height * 1000 + width)
        pixels = (
            rng.integers(0, 256, (height, width, channels))
            if value is None
            else np.full((height, width, channels), value)
        )
        return _encode(pixels.astype(np.uint8), image_format)

    return make


@pytest.fixture
def write_shards(tmp_path):
    """write_shards(split, records_per_shard) writes `<tmp>/<split>-0000i-of-0000n` and returns the dir.

    Each shard is a list of serialized records (bytes).
    """
    directory = tmp_path / "shards"
    directory.mkdir(exist_ok=True)

    def write(split, records_per_shard):
        for index, records in enumerate(records_per_shard):
            path = directory / f"{split}-{index:05d}-of-{len(records_per_shard):05d}"
            with tf.io.TFRecordWriter(str(path)) as writer:
                for record in records:
                    writer.write(record)
        return str(directory)

    return write
