"""ImageNet-1k class names, `preprocess_input` and `decode_predictions` (keras.applications style)."""

import functools
import importlib.resources

import numpy as np
from keras import ops

CLASSES_FILE = "imagenet2012_classes.tsv"

# ImageNet-1k (ILSVRC 2012): its classes and the examples of its two labelled splits.
IMAGENET_NUM_CLASSES = 1000
IMAGENET_NUM_TRAIN_EXAMPLES = 1_281_167
IMAGENET_NUM_EVAL_EXAMPLES = 50_000


@functools.cache
def imagenet_class_names():
    """The 1000 ImageNet classes as `(synset, name)` pairs, in TFDS / Keras label order."""
    text = importlib.resources.files("inception_keras.resources").joinpath(CLASSES_FILE).read_text()
    rows = [line.split("\t") for line in text.splitlines()[1:] if line.strip()]
    assert [int(index) for index, _, _ in rows] == list(range(len(rows))), "classes file out of order"
    return tuple((synset, name) for _, synset, name in rows)


def imagenet_label_names():
    """The 1000 human-readable ImageNet class names alone, in label order."""
    return tuple(name for _, name in imagenet_class_names())


def preprocess_input(x):
    """Pixels in [0, 255] to [-1, 1], as `keras.applications.inception_v3.preprocess_input`."""
    if isinstance(x, np.ndarray):
        return x.astype("float32") / 127.5 - 1.0
    return ops.cast(x, "float32") / 127.5 - 1.0


def decode_predictions(preds, top=5):
    """Probabilities [batch, 1000] -> for each image, the `top` `(synset, name, score)` triples."""
    preds = np.asarray(ops.convert_to_numpy(preds) if not isinstance(preds, np.ndarray) else preds)
    names = imagenet_class_names()
    if preds.ndim != 2 or preds.shape[1] != len(names):
        raise ValueError(
            "`decode_predictions` expects a batch of ImageNet predictions of shape "
            f"(samples, {len(names)}); received an array of shape {preds.shape}."
        )
    if not 1 <= top <= len(names):
        raise ValueError(f"`top` must be between 1 and {len(names)}; received top={top}.")
    results = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(*names[i], float(row[i])) for i in best])
    return results
