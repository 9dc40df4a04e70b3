"""What a dataset name means: its kind, its classes and its split sizes."""

import dataclasses

from inception_keras.data.errors import DataError
from inception_keras.data.folder import folder_class_names, folder_files
from inception_keras.data.smoke import ensure_smoke_dataset, smoke_split_sizes
from inception_keras.data.smoke_images import SMOKE_CLASS_NAMES
from inception_keras.data.synthetic import (
    SYNTHETIC_NUM_CLASSES,
    SYNTHETIC_NUM_EVAL_EXAMPLES,
    SYNTHETIC_NUM_TRAIN_EXAMPLES,
)
from inception_keras.data.tfds_source import prepare, supervised_keys, tfds_builder, tfds_split_name
from inception_keras.imagenet_classes import imagenet_label_names

IMAGENET_NUM_TRAIN_EXAMPLES = 1_281_167
IMAGENET_NUM_EVAL_EXAMPLES = 50_000
DATASET_FORMS = '"imagenet_tfrecord", "tfds:NAME", "folder:PATH", "synthetic" or "smoke"'


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    class_names: tuple[str, ...]
    num_train_examples: int | None
    num_eval_examples: int | None


def parse_dataset(dataset):
    """Splits a dataset name: 'tfds:NAME' -> ('tfds', 'NAME'), 'smoke' -> ('smoke', None)."""
    kind, sep, argument = str(dataset).partition(":")
    if kind in ("imagenet_tfrecord", "synthetic", "smoke") and not sep:
        return kind, None
    if kind in ("tfds", "folder") and argument:
        return kind, argument
    raise DataError(f"unknown dataset {dataset!r}; expected {DATASET_FORMS}")


def dataset_info(dataset, data_dir=None):
    """Classes and split sizes of a dataset (None where a size is unknown without reading it all).

    `imagenet_tfrecord` reports ImageNet's split sizes; `smoke` builds the smoke set if needed,
    with `data_dir` as its cache root (None: `$INCEPTION_KERAS_CACHE` or ~/.cache/inception_keras).
    """
    kind, argument = parse_dataset(dataset)
    return _INFO[kind](argument, data_dir)


def _imagenet_info(_, data_dir):
    return DatasetInfo(
        1000, imagenet_label_names(), IMAGENET_NUM_TRAIN_EXAMPLES, IMAGENET_NUM_EVAL_EXAMPLES
    )


def _smoke_info(_, data_dir):
    sizes = smoke_split_sizes(ensure_smoke_dataset(data_dir))
    return DatasetInfo(len(SMOKE_CLASS_NAMES), SMOKE_CLASS_NAMES, sizes["train"], sizes["validation"])


def _synthetic_info(_, data_dir):
    names = tuple(f"class_{i:04d}" for i in range(SYNTHETIC_NUM_CLASSES))
    return DatasetInfo(
        SYNTHETIC_NUM_CLASSES, names, SYNTHETIC_NUM_TRAIN_EXAMPLES, SYNTHETIC_NUM_EVAL_EXAMPLES
    )


def _folder_info(root, data_dir):
    names = folder_class_names(root)
    return DatasetInfo(
        len(names), names, len(folder_files(root, "train")[0]), len(folder_files(root, "validation")[0])
    )


def _tfds_info(name, data_dir):
    builder = tfds_builder(name, data_dir)
    prepare(builder, data_dir)  # split sizes are known only once the dataset is built
    label_feature = builder.info.features[supervised_keys(builder)[1]]
    names = (
        imagenet_label_names()
        if name.split("/")[0].split(":")[0] == "imagenet2012"
        else tuple(label_feature.names)
    )

    def size(split):
        splits = builder.info.splits
        return splits[tfds_split_name(builder, split)].num_examples if splits else None

    return DatasetInfo(label_feature.num_classes, names, size("train"), size("validation"))


_INFO = {
    "imagenet_tfrecord": _imagenet_info,
    "smoke": _smoke_info,
    "synthetic": _synthetic_info,
    "folder": _folder_info,
    "tfds": _tfds_info,
}
