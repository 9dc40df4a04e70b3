import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data import DataError, corrupt_records_seen, serialize_example, tfrecord_dataset
from inception_keras.data.tfrecord import read_records, shard_files

SIZE = 16


def _record(encoded_image, label, value=None):
    return serialize_example(encoded_image(20, 24, value=value), label, height=20, width=24)


def _labels(dataset):
    return sorted(int(label) for _, label in dataset)


def test_labels_are_shifted_to_zero_based(encoded_image, write_shards):
    data_dir = write_shards("validation", [[_record(encoded_image, label) for label in (1, 2, 5)]])
    dataset = tfrecord_dataset(data_dir, "validation", image_size=SIZE, is_training=False, num_classes=5)
    examples = list(dataset)
    assert [int(label) for _, label in examples] == [0, 1, 4]
    assert all(label.shape == () and label.dtype == tf.int32 for _, label in examples)
    assert all(image.shape == (SIZE, SIZE, 3) for image, _ in examples)


def test_training_repeats_and_preprocesses(encoded_image, write_shards):
    data_dir = write_shards("train", [[_record(encoded_image, 1)], [_record(encoded_image, 2)]])
    dataset = tfrecord_dataset(
        data_dir, "train", image_size=SIZE, is_training=True, num_classes=2, seed=1
    )
    examples = list(dataset.take(6))
    assert sorted(int(label) for _, label in examples) == [0, 0, 0, 1, 1, 1]
    assert all(float(tf.reduce_max(tf.abs(image))) <= 1.0 for image, _ in examples)


def test_two_input_pipelines_read_disjoint_files(encoded_image, write_shards):
    # Shard i holds only label i+1, so each pipeline's labels tell which files it read.
    data_dir = write_shards("validation", [[_record(encoded_image, i + 1)] * 2 for i in range(4)])
    seen = []
    for pipeline_id in (0, 1):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id)
        dataset = tfrecord_dataset(
            data_dir,
            "validation",
            image_size=SIZE,
            is_training=False,
            num_classes=4,
            input_context=context,
        )
        seen.append(set(_labels(dataset)))
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == {0, 1, 2, 3}


def test_corrupt_records_are_dropped_and_counted(encoded_image, write_shards):
    good = _record(encoded_image, 1)
    truncated = serialize_example(encoded_image(20, 24)[:150], 2, height=20, width=24)
    data_dir = write_shards("validation", [[good, b"not a tf.train.Example", truncated, good]])
    before = corrupt_records_seen()
    labels = _labels(
        tfrecord_dataset(data_dir, "validation", image_size=SIZE, is_training=False, num_classes=2)
    )
    assert labels == [0, 0]
    assert corrupt_records_seen() - before == 2


def test_out_of_range_label_counts_as_corrupt(encoded_image, write_shards):
    data_dir = write_shards("validation", [[_record(encoded_image, 1), _record(encoded_image, 9)]])
    before = corrupt_records_seen()
    assert _labels(
        tfrecord_dataset(data_dir, "validation", image_size=SIZE, is_training=False, num_classes=3)
    ) == [0]
    assert corrupt_records_seen() - before == 1


def test_truncated_shard_keeps_its_complete_records(encoded_image, write_shards, tmp_path):
    data_dir = write_shards("validation", [[_record(encoded_image, 1)] * 3])
    path = os.path.join(data_dir, "validation-00000-of-00001")
    content = open(path, "rb").read()
    open(path, "wb").write(content[: len(content) - 40])
    assert len(list(read_records([path], is_training=False))) == 2


def test_deterministic_training_order_repeats_with_the_seed(encoded_image, write_shards):
    data_dir = write_shards("train", [[_record(encoded_image, label) for label in range(1, 5)]] * 2)

    def run():
        dataset = tfrecord_dataset(
            data_dir,
            "train",
            image_size=SIZE,
            is_training=True,
            num_classes=4,
            seed=5,
            deterministic=True,
        )
        return np.stack([image for image, _ in dataset.take(8)])

    assert np.array_equal(run(), run())


def test_missing_data_dir_is_an_error(tmp_path):
    with pytest.raises(DataError, match="needs data_dir"):
        shard_files(None, "train")
    missing = str(tmp_path / "nope")
    with pytest.raises(DataError, match=f"{missing}.*train-NNNNN-of-NNNNN"):
        shard_files(missing, "train")


def test_empty_glob_is_an_error_naming_the_pattern(tmp_path):
    with pytest.raises(DataError, match=r"validation-\*-of-\*.*expected"):
        shard_files(str(tmp_path), "validation")


def test_bad_split_is_an_error(tmp_path):
    with pytest.raises(DataError, match="split must be one of"):
        shard_files(str(tmp_path), "test")


def test_fewer_files_than_input_pipelines_is_an_error(encoded_image, write_shards):
    data_dir = write_shards("train", [[_record(encoded_image, 1)]])
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
    with pytest.raises(DataError, match="1 file.*2 input pipelines"):
        tfrecord_dataset(
            data_dir, "train", image_size=SIZE, is_training=True, num_classes=1, input_context=context
        )


def test_corrupt_records_are_dropped_while_training(encoded_image, write_shards):
    data_dir = write_shards(
        "train", [[b"garbage", _record(encoded_image, 1), b"junk", _record(encoded_image, 2)]]
    )
    before = corrupt_records_seen()
    dataset = tfrecord_dataset(
        data_dir, "train", image_size=SIZE, is_training=True, num_classes=2, seed=0
    )
    assert len(list(dataset.take(4))) == 4  # two epochs of the good records
    assert corrupt_records_seen() - before >= 2  # at least the first epoch's


def test_training_input_with_only_corrupt_records_ends_instead_of_spinning(write_shards):
    data_dir = write_shards("train", [[b"garbage", b"junk"]])
    dataset = tfrecord_dataset(data_dir, "train", image_size=SIZE, is_training=True, num_classes=2)
    assert list(dataset.take(3)) == []
