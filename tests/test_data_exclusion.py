"""eval_exclude: the listed validation images are left out of evaluation input, exactly them,
and the count over the split's file names says how many (data/exclusion.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from inception_keras.data import (
    DataError,
    ExampleOptions,
    excluded_count,
    make_input_fn,
    read_exclusions,
    serialize_example,
)

NAMES = [f"ILSVRC2012_val_{number:08d}.JPEG" for number in range(1, 7)]


def _labels(dataset, data_dir, exclude, batch=4):
    """The class ids of every real example of a masked evaluation pass."""
    fn = make_input_fn(dataset, data_dir=data_dir, split="validation", image_size=16,
                       global_batch_size=batch, is_training=False, masked=True, exclude=exclude)
    labels = []
    for _, batch_labels, weights in fn():
        if not weights.numpy().any():
            break
        labels += batch_labels.numpy()[weights.numpy() > 0].tolist()
    return labels


def test_the_file_holds_names_and_one_based_imagenet_numbers(tmp_path):
    path = tmp_path / "exclude.txt"
    path.write_text("# the ILSVRC-2014 blacklist form\n2\n\n  17  \ncat/3.jpg  # a path\nx.png\n")
    assert read_exclusions(str(path)) == {
        "ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000017.JPEG", "cat/3.jpg", "x.png"}
    path.write_text("1\n0\n")
    with pytest.raises(DataError, match="line 2: 0 is no validation image number"):
        read_exclusions(str(path))
    with pytest.raises(DataError, match="eval_exclude: no file"):
        read_exclusions(str(tmp_path / "missing.txt"))


def test_tfrecord_exclusion_removes_exactly_its_images_and_counts_them(
        encoded_image, write_shards):
    # label i + 1 marks the image named NAMES[i]; two shards, read interleaved
    records = [serialize_example(encoded_image(20, 24), i + 1, height=20, width=24,
                                 filename=f"val/{name}") for i, name in enumerate(NAMES)]
    data_dir = write_shards("validation", [records[:3], records[3:]])
    everything = _labels("imagenet_tfrecord", data_dir, frozenset())
    assert sorted(everything) == [0, 1, 2, 3, 4, 5]
    exclusions = frozenset({NAMES[1], NAMES[4], "ILSVRC2012_val_00000099.JPEG"})
    kept = _labels("imagenet_tfrecord", data_dir, exclusions)
    assert kept == [label for label in everything if label not in (1, 4)]
    assert excluded_count("imagenet_tfrecord", data_dir, exclusions) == (
        2, ["ILSVRC2012_val_00000099.JPEG"])


def test_folder_exclusion_by_base_name_or_path_end(tmp_path, write_image_folder):
    root = write_image_folder(tmp_path / "photos", ["cat", "dog"], 1, 3)
    dataset = f"folder:{root}"
    assert sorted(_labels(dataset, None, frozenset())) == [0, 0, 0, 1, 1, 1]
    assert sorted(_labels(dataset, None, frozenset({"cat/1.jpg"}))) == [0, 0, 1, 1, 1]
    assert sorted(_labels(dataset, None, frozenset({"2.jpg"}))) == [0, 0, 1, 1]  # both classes'
    assert excluded_count(dataset, None, frozenset({"cat/1.jpg", "2.jpg", "dog/9.jpg"})) == (
        3, ["dog/9.jpg"])


@pytest.mark.parametrize("dataset", ["smoke", "synthetic"])
def test_datasets_without_file_names_refuse_exclusion(dataset, tmp_path):
    with pytest.raises(DataError, match=f"dataset {dataset} has no image file names"):
        make_input_fn(dataset, data_dir=None, split="validation", image_size=16,
                      global_batch_size=2, is_training=False, masked=True,
                      exclude=frozenset({"a.jpg"}))()
    with pytest.raises(DataError, match="has no image file names"):
        excluded_count(dataset, None, frozenset({"a.jpg"}))


def test_exclusion_is_for_evaluation_only():
    with pytest.raises(DataError, match="not training"):
        ExampleOptions(image_size=16, is_training=True, exclude=frozenset({"a.jpg"}))
