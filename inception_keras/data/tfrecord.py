"""ImageNet-format TFRecord shards: `<data_dir>/train-*-of-*`, `<data_dir>/validation-*-of-*`.

Each record is a `tf.train.Example` with `image/encoded` (JPEG bytes) and `image/class/label`
(1..N; 1..1000 for ImageNet in sorted-synset order, the order of `decode_predictions`). Labels
are shifted to 0..N-1. Paths go through `tf.io.gfile`, so `gs://` buckets work.
"""

import tensorflow as tf

from inception_keras.data.errors import DataError
from inception_keras.data.examples import ExampleOptions, to_examples
from inception_keras.data.exclusion import drop_excluded
from inception_keras.data.sharding import shard_items
from inception_keras.imagenet_classes import IMAGENET_NUM_CLASSES

SPLITS = ("train", "validation")
LAYOUT = "<data_dir>/train-NNNNN-of-NNNNN and <data_dir>/validation-NNNNN-of-NNNNN TFRecord shards"
_FILE_CYCLE_LENGTH = 16
_READ_BUFFER_BYTES = 8 * 1024 * 1024
_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}
_FILE_NAME = {"image/filename": tf.io.FixedLenFeature([], tf.string, default_value="")}


def check_split(split):
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")


def shard_files(data_dir, split):
    """Sorted shard paths of a split; DataError naming the path and layout when there are none."""
    check_split(split)
    if not data_dir:
        raise DataError(f"an ImageNet TFRecord dataset needs data_dir: a directory of {LAYOUT}")
    if not tf.io.gfile.isdir(data_dir):
        raise DataError(f"data_dir {data_dir!r} does not exist or is not a directory; expected {LAYOUT}")
    pattern = f"{data_dir.rstrip('/')}/{split}-*-of-*"
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise DataError(f"no TFRecord shards match {pattern!r}; expected {LAYOUT}")
    return files


def serialize_example(image_bytes, label, *, height, width, synset="", text="", image_format="JPEG",
                      filename=""):
    """One record in the ImageNet shard format; `label` is 1-based; `filename` (if any) is the
    image's `image/filename`, what eval_exclude matches."""

    def _bytes(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": _bytes(image_bytes),
        "image/format": _bytes(image_format.encode()),
        "image/class/label": _int(label),
        "image/class/synset": _bytes(synset.encode()),
        "image/class/text": _bytes(text.encode()),
        "image/height": _int(height),
        "image/width": _int(width),
        "image/colorspace": _bytes(b"RGB"),
        "image/channels": _int(3),
    }
    if filename:
        features["image/filename"] = _bytes(filename.encode())
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def parse_record(record):
    """Serialized Example -> (encoded image bytes, 0-based int32 label). Fails on a garbage record."""
    parsed = tf.io.parse_single_example(record, _FEATURES)
    return parsed["image/encoded"], tf.cast(parsed["image/class/label"], tf.int32) - 1


def record_file_name(record):
    """A serialized Example's `image/filename` ("" when it has none)."""
    return tf.io.parse_single_example(record, _FILE_NAME)["image/filename"]


def file_names(data_dir, split):
    """Every record's file name of a split, in file order (numpy bytes; for eval_exclude)."""
    records = read_records(shard_files(data_dir, split), is_training=False)
    return records.map(record_file_name).ignore_errors().as_numpy_iterator()


def read_records(files, *, is_training, seed=None, deterministic=False):
    """Serialized records of `files`, interleaved; file order shuffled each epoch when training.

    A shard truncated mid-record ends early (the rest of that file is skipped with a warning in
    the log) instead of stopping training.
    """
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if is_training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def read(path):
        return tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER_BYTES).ignore_errors(
            log_warning=True
        )

    return dataset.interleave(
        read,
        cycle_length=min(len(files), _FILE_CYCLE_LENGTH),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic or not is_training,
    )


def tfrecord_dataset(data_dir, split, *, input_context=None, **options):
    """Unbatched (image, class id) examples of this input pipeline's shards of a split.

    `options` are `ExampleOptions`' fields (image_size and is_training at least); num_classes
    defaults to ImageNet's 1000.
    """
    return tfrecord_examples(data_dir, split, ExampleOptions(**options), input_context)


def tfrecord_examples(data_dir, split, options, input_context=None):
    """`tfrecord_dataset` with its options as one `ExampleOptions`."""
    files = shard_items(shard_files(data_dir, split), input_context, f"{data_dir}/{split}-*-of-*")
    options = options.with_default_classes(IMAGENET_NUM_CLASSES).for_pipeline(input_context)
    records = read_records(
        files, is_training=options.is_training, seed=options.seed, deterministic=options.deterministic
    )
    if options.exclude:  # a garbage record fails the name's parse: dropped, as parse_record would
        records = drop_excluded(records, record_file_name, options.exclude).ignore_errors()
    return to_examples(records, parse_record, options)
