import csv
import importlib.resources
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow_datasets as tfds

from inception_keras import decode_predictions, imagenet_class_names
from inception_keras.imagenet_classes import CLASSES_FILE, imagenet_label_names


def packaged_rows():
    """The rows of the classes file shipped in the package, read with the csv module."""
    text = importlib.resources.files("inception_keras.resources").joinpath(CLASSES_FILE).read_text()
    return list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))


def test_class_names_are_the_packaged_file_in_label_order():
    header, *rows = packaged_rows()
    assert header == ["index", "synset", "lemma"]
    assert [int(index) for index, _, _ in rows] == list(range(1000))
    assert [(synset, name) for _, synset, name in rows] == list(imagenet_class_names())
    assert imagenet_label_names() == tuple(name for _, _, name in rows)


def test_class_names_are_the_1000_imagenet_classes_in_tfds_label_order():
    names = imagenet_class_names()
    # TFDS labels imagenet2012 by the index of the synset in its bundled labels.txt.
    tfds_synsets = tfds.core.tfds_path("datasets/imagenet2012/labels.txt").read_text().split()
    assert [synset for synset, _ in names] == tfds_synsets
    assert len(set(tfds_synsets)) == 1000
    assert names[0] == ("n01440764", "tench, Tinca tinca")
    assert names[1] == ("n01443537", "goldfish, Carassius auratus")
    assert names[999] == ("n15075141", "toilet tissue, toilet paper, bathroom tissue")
    assert all(name and name == name.strip() for _, name in names)


def test_decode_predictions_orders_by_score():
    preds = np.zeros((2, 1000), "float32")
    preds[0, [1, 2, 3]] = [0.2, 0.7, 0.1]
    preds[1, 999] = 1.0
    decoded = decode_predictions(preds, top=2)
    assert decoded[0] == [("n01484850", imagenet_class_names()[2][1], pytest.approx(0.7)),
                          ("n01443537", "goldfish, Carassius auratus", pytest.approx(0.2))]
    assert decoded[1][0][0] == "n15075141" and len(decoded[1]) == 2


@pytest.mark.parametrize("shape", [(1000,), (2, 10)])
def test_decode_predictions_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match="1000"):
        decode_predictions(np.zeros(shape))
