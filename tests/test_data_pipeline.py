import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data import (
    DataError,
    corrupt_records_seen,
    dataset_info,
    make_input_fn,
    serialize_example,
)

SIZE = 16


@pytest.fixture
def shards(encoded_image, write_shards):
    records = [
        serialize_example(encoded_image(20, 24), label, height=20, width=24) for label in (1, 2, 3, 1, 2)
    ]
    write_shards("train", [records, records])
    return write_shards("validation", [records, records])


def _input_fn(data_dir, dataset="imagenet_tfrecord", **overrides):
    arguments = dict(
        data_dir=data_dir,
        split="validation",
        image_size=SIZE,
        global_batch_size=4,
        is_training=False,
        num_classes=3,
    )
    return make_input_fn(dataset, **{**arguments, **overrides})


def test_eval_batches_are_static_and_drop_the_remainder(shards):
    dataset = _input_fn(shards)(None)
    assert dataset.element_spec[0].shape == (4, SIZE, SIZE, 3)
    assert [images.shape[0] for images, _ in dataset] == [4, 4]  # 10 records, remainder 2 dropped


def test_masked_eval_batches_keep_file_order(encoded_image, write_shards):
    # Without `deterministic`, too: a padding batch overtaking a real one would end an evaluation.
    records = [serialize_example(encoded_image(20 + i % 7, 24), i + 1, height=1, width=1)
               for i in range(24)]
    data_dir = write_shards("validation", [records[:12], records[12:]])
    input_fn = _input_fn(data_dir, global_batch_size=2, num_classes=24, masked=True)
    batches = list(input_fn(None).take(14))
    weights = np.concatenate([batch_weights.numpy() for _, _, batch_weights in batches])
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels, _ in batches])
    assert weights.tolist() == [1.0] * 24 + [0.0] * 4
    interleaved = [index for pair in zip(range(12), range(12, 24)) for index in pair]
    assert labels[:24].tolist() == interleaved


def test_bfloat16_images_int32_class_ids(shards):
    images, labels = next(
        iter(_input_fn(shards, split="train", is_training=True, dtype="bfloat16")(None))
    )
    assert images.dtype == tf.bfloat16 and labels.dtype == tf.int32 and labels.shape == (4,)
    assert float(tf.reduce_max(tf.abs(tf.cast(images, tf.float32)))) <= 1.0


def test_dtype_may_be_a_tf_dtype(shards):
    images, _ = next(iter(_input_fn(shards, dtype=tf.float16)(None)))
    assert images.dtype == tf.float16


def test_eval_examples_are_cached_in_cache_dir(shards, tmp_path):
    cache = tmp_path / "cache"
    input_fn = _input_fn(shards, cache_dir=str(cache))
    first = [images.numpy() for images, _ in input_fn(None)]
    assert any(name.endswith(".index") for name in os.listdir(cache))
    second = [images.numpy() for images, _ in input_fn(None)]
    assert len(first) == 2 and all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_per_replica_batch_from_the_input_context(shards):
    context = tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=4
    )
    images, labels = next(
        iter(_input_fn(shards, split="train", is_training=True, global_batch_size=8)(context))
    )
    assert images.shape == (2, SIZE, SIZE, 3) and labels.shape == (2,)


def test_deterministic_runs_are_identical(shards):
    def first_batches():
        dataset = _input_fn(shards, split="train", is_training=True, deterministic=True)(None)
        return np.concatenate([images.numpy() for images, _ in dataset.take(3)])

    assert np.array_equal(first_batches(), first_batches())


def test_distribute_datasets_from_function(shards):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        dataset = strategy.distribute_datasets_from_function(
            _input_fn(shards, split="train", is_training=True)
        )
    images, labels = next(iter(dataset))
    assert images.shape == (4, SIZE, SIZE, 3) and labels.shape == (4,)


def test_synthetic_input(shards):
    input_fn = _input_fn(
        None, "synthetic", split="train", global_batch_size=2, is_training=True, num_classes=7
    )
    images, labels = next(iter(input_fn(None)))
    assert images.shape == (2, SIZE, SIZE, 3) and labels.shape == (2,)
    assert labels.dtype == tf.int32 and 0 <= int(labels[0]) < 7
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0
    assert dataset_info("synthetic", None).num_classes == 1000


def test_corrupt_records_seen_counts_every_dropped_record(encoded_image, write_shards):
    good = serialize_example(encoded_image(20, 24), 1, height=20, width=24)
    not_an_image = serialize_example(b"not an image", 2, height=20, width=24)
    data_dir = write_shards("validation", [[good, b"garbage", not_an_image, good, b"junk", good]])
    input_fn = _input_fn(data_dir, global_batch_size=1)
    gc.collect()  # the counter is process-wide: no earlier test's iterator may still read ahead
    before = corrupt_records_seen()
    assert isinstance(before, int)
    for epoch in (1, 2):
        assert len(list(input_fn(None))) == 3
        assert corrupt_records_seen() - before == 3 * epoch


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"split": "test"}, "split must be one of"),
        ({"image_size": 0}, "image_size"),
        ({"global_batch_size": -1}, "global_batch_size"),
        ({"dtype": "int8"}, "dtype must be one of"),
    ],
)
def test_bad_arguments_are_errors(shards, overrides, match):
    with pytest.raises(DataError, match=match):
        _input_fn(shards, **overrides)


def test_batch_not_divisible_by_replicas_is_an_error(shards):
    context = tf.distribute.InputContext(
        num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=3
    )
    with pytest.raises(DataError, match="not divisible by the 3 replicas"):
        _input_fn(shards)(context)


def test_unknown_dataset_is_an_error():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'.*tfds:NAME"):
        _input_fn(None, "imagenet")
    with pytest.raises(DataError, match=r"^unknown dataset 'smoke:x'; expected [^\n]*\"smoke\"$"):
        dataset_info("smoke:x")
