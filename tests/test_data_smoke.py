import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data import (
    SMOKE_CLASS_NAMES,
    DataError,
    dataset_info,
    ensure_smoke_dataset,
    make_input_fn,
)
from inception_keras.data.smoke import smoke_dir
from inception_keras.data.smoke_images import draw_image
from inception_keras.data.tfrecord import shard_files

TINY = dict(train_per_class=2, validation_per_class=1)


def test_written_once_in_imagenet_shard_format(tmp_path):
    directory = ensure_smoke_dataset(str(tmp_path / "smoke"), **TINY)
    assert directory == str(tmp_path / "smoke")  # data_dir is the set's own folder
    assert [os.path.basename(f) for f in shard_files(directory, "validation")] == [
        "validation-00000-of-00002",
        "validation-00001-of-00002",
    ]
    assert len(shard_files(directory, "train")) == 4
    stamp = os.path.getmtime(shard_files(directory, "train")[0])
    assert ensure_smoke_dataset(str(tmp_path / "smoke") + "/", **TINY) == directory
    assert os.path.getmtime(shard_files(directory, "train")[0]) == stamp
    assert os.listdir(tmp_path) == ["smoke"]  # no staging directory left behind


def test_written_into_an_empty_data_dir(tmp_path):
    (tmp_path / "smoke").mkdir()
    directory = ensure_smoke_dataset(str(tmp_path / "smoke"), **TINY)
    assert len(shard_files(directory, "validation")) == 2


def test_records_decode_with_labels_of_every_class(tmp_path):
    ensure_smoke_dataset(str(tmp_path), **TINY)
    assert dataset_info("smoke", str(tmp_path)).num_eval_examples == 10
    input_fn = make_input_fn(
        "smoke",
        data_dir=str(tmp_path),
        split="validation",
        image_size=32,
        global_batch_size=5,
        is_training=False,
    )
    labels = np.concatenate([labels.numpy() for _, labels in input_fn(None)])
    assert labels.shape == (10,) and sorted(labels) == list(range(10))


def test_generation_is_deterministic(tmp_path):
    first = ensure_smoke_dataset(str(tmp_path / "a"), **TINY)
    second = ensure_smoke_dataset(str(tmp_path / "b"), **TINY)
    for name in os.listdir(first):
        assert (
            open(os.path.join(first, name), "rb").read() == open(os.path.join(second, name), "rb").read()
        )


def test_classes_differ_in_mean_colour():
    rng = np.random.default_rng(0)
    hues = []
    for label in range(len(SMOKE_CLASS_NAMES)):
        mean = np.mean([draw_image(label, rng).reshape(-1, 3).mean(0) for _ in range(3)], axis=0)
        hues.append(float(tf.image.rgb_to_hsv(mean / 255.0)[0]))
    assert min(np.diff(sorted(hues))) > 0.04


def test_default_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INCEPTION_KERAS_CACHE", str(tmp_path))
    assert smoke_dir() == smoke_dir(None) == str(tmp_path / "smoke_v1")
    monkeypatch.delenv("INCEPTION_KERAS_CACHE")
    assert smoke_dir() == os.path.expanduser("~/.cache/inception_keras/smoke_v1")
    assert smoke_dir(str(tmp_path / "mine")) == str(tmp_path / "mine")


def test_unwritable_location_is_an_error(tmp_path):
    blocker = tmp_path / "smoke_v1"
    blocker.mkdir()
    (blocker / "someone_elses_file").write_text("x")
    with pytest.raises(DataError, match="smoke_v1"):
        ensure_smoke_dataset(str(blocker), **TINY)


@pytest.mark.slow  # 3,500 images, written once per session (conftest's smoke_dataset)
def test_full_size_set(smoke_dataset):
    assert smoke_dataset == smoke_dir()  # the session's cache, which CLI tests inherit
    info = dataset_info("smoke", None)
    assert (info.num_classes, info.num_train_examples, info.num_eval_examples) == (10, 3000, 500)
    assert info.class_names == SMOKE_CLASS_NAMES
    assert len(shard_files(smoke_dataset, "train")) == 4
