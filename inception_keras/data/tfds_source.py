"""TensorFlow Datasets image-classification datasets (`tfds:NAME`), e.g. `tfds:imagenet2012`.

Images are read as encoded bytes (`SkipDecoding`) so that JPEGs take the fused crop-decode path
of the shared preprocessing. `imagenet2012` is built by TFDS from the archives a user puts in
its manual download dir, `<data_dir>/downloads/manual/` (ILSVRC2012_img_train.tar,
ILSVRC2012_img_val.tar); its labels are already 0..999 in sorted-synset order.
"""

import os

import tensorflow as tf
import tensorflow_datasets as tfds

from inception_keras.data.errors import DataError
from inception_keras.data.examples import ExampleOptions, to_examples
from inception_keras.data.exclusion import drop_excluded, no_file_names
from inception_keras.data.tfrecord import check_split

_FILE_CYCLE_LENGTH = 16


def tfds_builder(name, data_dir):
    """The builder of an image-classification dataset; DataError for unknown or unsuitable ones."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # TFDS raises several unrelated types for a bad name.
        raise DataError(f"unknown TFDS dataset {name!r} (data_dir={data_dir!r}): {error}") from error
    image_key, label_key = supervised_keys(builder)
    features = builder.info.features
    if not isinstance(features[image_key], tfds.features.Image) or not isinstance(
        features[label_key], tfds.features.ClassLabel
    ):
        raise DataError(
            f"TFDS dataset {name!r} is not image classification: "
            "expected an Image and a ClassLabel feature"
        )
    return builder


def supervised_keys(builder):
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(key, str) for key in keys):
        raise DataError(
            f"TFDS dataset {builder.name!r} has no (image, label) supervised keys; "
            "expected an image-classification dataset"
        )
    return keys


def tfds_split_name(builder, split):
    """TFDS split for 'train' / 'validation' ('test' when a dataset has no validation split)."""
    check_split(split)
    available = set(builder.info.splits.keys())
    if not available or split in available:
        return split
    if split == "validation" and "test" in available:
        return "test"
    raise DataError(f"TFDS dataset {builder.name!r} has no {split!r} split (it has {sorted(available)})")


# The archives a manual-download dataset is built from, where we know them (a builder's own
# instructions are free text). TFDS builds imagenet2012 without ILSVRC2012_img_train.tar, but a
# dataset prepared without its train split is not rebuilt when the archive arrives later.
MANUAL_ARCHIVES = {"imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")}
IMAGENET_DOWNLOAD_PAGE = "https://image-net.org/download-images"


def prepare(builder, data_dir):
    """Builds the dataset in `data_dir` unless it is there already (downloads unless manual)."""
    manual_dir = os.path.join(data_dir, "downloads", "manual") if data_dir else None
    if manual_dir and builder.name in MANUAL_ARCHIVES and not builder.is_prepared():
        _check_manual_archives(builder.name, manual_dir)
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except Exception as error:  # Download, manual-dir and build failures all surface here.
        raise DataError(_prepare_failure(builder, data_dir, manual_dir, error)) from error


def _check_manual_archives(name, manual_dir):
    """DataError, in one line, naming the archives missing from `manual_dir` (local or gs://)."""
    archives = MANUAL_ARCHIVES[name]
    missing = [f for f in archives if not tf.io.gfile.exists(os.path.join(manual_dir, f))]
    if missing:
        raise DataError(
            f"TFDS dataset {name!r} is built from its manual download: put {' and '.join(archives)} "
            f"(from {IMAGENET_DOWNLOAD_PAGE}) in {manual_dir}/ (missing: {', '.join(missing)})"
        )


def _prepare_failure(builder, data_dir, manual_dir, error):
    """One line saying why `builder` could not be prepared."""
    instructions = builder.MANUAL_DOWNLOAD_INSTRUCTIONS
    if instructions and manual_dir and not (
        tf.io.gfile.isdir(manual_dir) and tf.io.gfile.listdir(manual_dir)
    ):
        return (
            f"TFDS dataset {builder.name!r} needs a manual download in {manual_dir}/: "
            f"{_one_line(instructions)}"
        )
    return (
        f"could not prepare TFDS dataset {builder.name!r} in data_dir={data_dir!r}: "
        f"{type(error).__name__}: {_one_line(error)}"
    )


def _one_line(text):
    return " ".join(str(text).split())


def tfds_dataset(name, split, *, data_dir=None, input_context=None, **options):
    """Unbatched (image, class id) examples of this input pipeline's files of a TFDS split.

    `options` are `ExampleOptions`' fields (image_size and is_training at least); num_classes
    defaults to the dataset's.
    """
    return tfds_examples(name, split, ExampleOptions(**options), data_dir, input_context)


def tfds_examples(name, split, options, data_dir=None, input_context=None):
    """`tfds_dataset` with its options as one `ExampleOptions`."""
    builder = tfds_builder(name, data_dir)
    prepare(builder, data_dir)
    image_key, label_key = supervised_keys(builder)
    num_classes = builder.info.features[label_key].num_classes
    options = options.with_default_classes(num_classes).for_pipeline(input_context)
    read_config = tfds.ReadConfig(
        input_context=input_context,
        shuffle_seed=options.seed,
        interleave_cycle_length=_FILE_CYCLE_LENGTH,
        try_autocache=False,
    )
    records = builder.as_dataset(
        split=tfds_split_name(builder, split),
        shuffle_files=options.is_training,
        decoders={image_key: tfds.decode.SkipDecoding()},
        read_config=read_config,
    )
    if options.exclude:
        _check_file_names(builder, name)
        records = drop_excluded(records, lambda example: example["file_name"], options.exclude)
    return to_examples(records, lambda example: (example[image_key], example[label_key]), options)


def tfds_file_names(name, split, data_dir=None):
    """Every example's `file_name` of a split (numpy bytes; for eval_exclude)."""
    builder = tfds_builder(name, data_dir)
    prepare(builder, data_dir)
    _check_file_names(builder, name)
    image_key, _ = supervised_keys(builder)
    records = builder.as_dataset(split=tfds_split_name(builder, split), shuffle_files=False,
                                 decoders={image_key: tfds.decode.SkipDecoding()})
    return records.map(lambda example: example["file_name"]).as_numpy_iterator()


def _check_file_names(builder, name):
    if "file_name" not in builder.info.features:
        raise no_file_names(f"tfds:{name}")
