"""TensorFlow Datasets image-classification datasets (`tfds:NAME`), e.g. `tfds:imagenet2012`.

Images are read as encoded bytes (`SkipDecoding`) so that JPEGs take the fused crop-decode path
of the shared preprocessing. `imagenet2012` is built by TFDS from the archives a user puts in
its manual download dir, `<data_dir>/downloads/manual/` (ILSVRC2012_img_train.tar,
ILSVRC2012_img_val.tar); its labels are already 0..999 in sorted-synset order.
"""

import os

import tensorflow_datasets as tfds

from inception_keras.data.errors import DataError
from inception_keras.data.examples import to_examples
from inception_keras.data.sharding import pipeline_seed
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


def prepare(builder, data_dir):
    """Builds the dataset in `data_dir` unless it is there already (downloads unless manual)."""
    manual_dir = os.path.join(data_dir, "downloads", "manual") if data_dir else None
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except Exception as error:  # Download, manual-dir and build failures all surface here.
        raise DataError(
            f"could not prepare TFDS dataset {builder.name!r} in data_dir={data_dir!r}: {error}. "
            f"Datasets that need a manual download (imagenet2012) expect the archives in "
            f"{manual_dir or '<data_dir>/downloads/manual'}/"
        ) from error


def tfds_dataset(
    name,
    split,
    *,
    data_dir=None,
    image_size,
    is_training,
    num_classes=None,
    input_context=None,
    seed=None,
    deterministic=False,
    color_distortion=False,
):
    """Unbatched (image, one-hot label) examples of this input pipeline's files of a TFDS split."""
    builder = tfds_builder(name, data_dir)
    prepare(builder, data_dir)
    image_key, label_key = supervised_keys(builder)
    seed = pipeline_seed(seed, input_context)
    read_config = tfds.ReadConfig(
        input_context=input_context,
        shuffle_seed=seed,
        interleave_cycle_length=_FILE_CYCLE_LENGTH,
        try_autocache=False,
    )
    records = builder.as_dataset(
        split=tfds_split_name(builder, split),
        shuffle_files=is_training,
        decoders={image_key: tfds.decode.SkipDecoding()},
        read_config=read_config,
    )
    return to_examples(
        records,
        lambda example: (example[image_key], example[label_key]),
        image_size=image_size,
        is_training=is_training,
        num_classes=num_classes or builder.info.features[label_key].num_classes,
        seed=seed,
        deterministic=deterministic,
        color_distortion=color_distortion,
    )
