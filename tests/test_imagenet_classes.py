import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from inception_keras import decode_predictions, imagenet_class_names

SHARED_CLASSES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "imagenet2012_classes.tsv")


def test_class_names_are_the_1000_imagenet_classes_in_label_order():
    names = imagenet_class_names()
    assert len(names) == 1000 and len({synset for synset, _ in names}) == 1000
    assert names[0] == ("n01440764", "tench, Tinca tinca")
    assert names[999][0] == "n15075141"
    if os.path.exists(SHARED_CLASSES):  # the packaged copy is the project's source file
        with open(SHARED_CLASSES) as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        assert [(s, n) for _, s, n in rows] == list(names)


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
