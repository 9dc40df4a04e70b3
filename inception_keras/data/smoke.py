"""The bundled smoke dataset: generated once, deterministically, as ImageNet-format TFRecords.

Its folder is the `data_dir` given for it, else `$INCEPTION_KERAS_CACHE/smoke_v1/`, else
`~/.cache/inception_keras/smoke_v1/`. It is written to a temporary sibling directory and renamed
into place, so a killed first run never leaves a half-written set. A `data_dir` on another
`tf.io.gfile` filesystem (`gs://...`) gets the set written locally first and copied there, its
marker file last: a set is complete once its marker exists.
"""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from inception_keras.atomic import publish_dir, staging_dir
from inception_keras.data.errors import DataError
from inception_keras.data.smoke_images import SMOKE_CLASS_NAMES, draw_image
from inception_keras.data.tfrecord import serialize_example
from inception_keras.paths import is_url, resolve

SMOKE_VERSION = "smoke_v1"
SMOKE_TRAIN_PER_CLASS = 300
SMOKE_VALIDATION_PER_CLASS = 50
SMOKE_SHARDS = {"train": 4, "validation": 2}
_MARKER = "smoke_info.json"
_SEEDS = {"train": 1, "validation": 2}


def smoke_dir(data_dir=None):
    """The smoke set's folder: `data_dir` (local paths made absolute), else the default folder
    `<$INCEPTION_KERAS_CACHE or ~/.cache/inception_keras>/smoke_v1`."""
    if data_dir:
        return resolve(data_dir)
    root = os.environ.get("INCEPTION_KERAS_CACHE") or os.path.join("~", ".cache", "inception_keras")
    return os.path.join(os.path.expanduser(root), SMOKE_VERSION)


def smoke_split_sizes(directory):
    """{'train': n, 'validation': m} of a complete smoke set, from its marker file."""
    with tf.io.gfile.GFile(os.path.join(directory, _MARKER)) as marker:
        return json.loads(marker.read())["num_examples"]


def _write_split(directory, split, per_class, seed):
    rng = np.random.default_rng(seed)
    num_shards = SMOKE_SHARDS[split]
    paths = [os.path.join(directory, f"{split}-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    num_classes = len(SMOKE_CLASS_NAMES)
    for index in range(per_class * num_classes):
        label = index % num_classes
        image = draw_image(label, rng)
        encoded = tf.io.encode_jpeg(image, quality=90).numpy()
        name = SMOKE_CLASS_NAMES[label]
        record = serialize_example(
            encoded, label + 1, height=image.shape[0], width=image.shape[1], synset=name, text=name
        )
        writers[index % num_shards].write(record)
    for writer in writers:
        writer.close()
    return per_class * num_classes


def write_smoke_dataset(
    directory, *, train_per_class=SMOKE_TRAIN_PER_CLASS, validation_per_class=SMOKE_VALIDATION_PER_CLASS
):
    """Writes the smoke shards and marker file into an existing, empty `directory`."""
    counts = {
        "train": _write_split(directory, "train", train_per_class, _SEEDS["train"]),
        "validation": _write_split(directory, "validation", validation_per_class, _SEEDS["validation"]),
    }
    with open(os.path.join(directory, _MARKER), "w") as marker:
        json.dump(
            {"version": SMOKE_VERSION, "class_names": SMOKE_CLASS_NAMES, "num_examples": counts}, marker
        )


def ensure_smoke_dataset(data_dir=None, **sizes):
    """Builds the smoke dataset in `smoke_dir(data_dir)` unless it is already complete there;
    returns that folder.

    The folder may be missing or empty; one holding other files is an error (DataError).
    `sizes` (train_per_class, validation_per_class) is for tests; the default is the real set.
    """
    target = smoke_dir(data_dir)
    if tf.io.gfile.exists(os.path.join(target, _MARKER)):
        return target
    if is_url(target):
        return _copy_built_set(target, sizes)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    with staging_dir(parent, prefix=f".{os.path.basename(target)}.partial-") as staging:
        try:
            write_smoke_dataset(staging, **sizes)
            publish_dir(staging, target)
        except OSError as error:
            # Another process may have finished first; anything else at `target` is not ours to
            # replace.
            if not os.path.isfile(os.path.join(target, _MARKER)):
                raise DataError(f"cannot create the smoke dataset at {target!r}: {error}") from error
    return target


def _copy_built_set(target, sizes):
    """Writes the set in a local temporary folder and copies it to `target`, marker last."""
    with staging_dir(tempfile.gettempdir(), prefix="smoke.partial-") as staging:
        write_smoke_dataset(staging, **sizes)
        try:
            tf.io.gfile.makedirs(target)
            names = sorted(os.listdir(staging), key=lambda name: name == _MARKER)
            for name in names:
                tf.io.gfile.copy(os.path.join(staging, name), os.path.join(target, name),
                                 overwrite=True)
        except tf.errors.OpError as error:
            raise DataError(f"cannot create the smoke dataset at {target!r}: {error.message}") \
                from None
    return target
