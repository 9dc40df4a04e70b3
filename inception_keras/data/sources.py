"""What a dataset name means: the one registry of dataset sources.

`dataset_source(name)` turns a name into its `Source`, one per kind:

| name | data_dir (where the dataset lives) |
| --- | --- |
| `imagenet_tfrecord` | the folder of ImageNet-format TFRecord shards (local or gs://) |
| `tfds:NAME` | TFDS's data dir (None: TFDS's default) |
| `folder:PATH` | unused: the images are in PATH |
| `synthetic` | unused |
| `smoke` | the smoke set's folder, built there on first use (None: the default, `smoke.smoke_dir`) |

A source knows its classes and split sizes (`info(data_dir) -> DatasetInfo`) and reads its
unbatched examples (`examples(split, options, data_dir, input_context) -> tf.data.Dataset`, with
`ExampleOptions`, whose `exclude` leaves out evaluation images by file name) and, where it has
them, lists a split's file names (`file_names(split, data_dir)`, for eval_exclude's count);
`dataset_info`, `make_input_fn` and `excluded_count` go through it.
"""

import dataclasses

from inception_keras.data.errors import DataError
from inception_keras.data.exclusion import count_excluded, no_file_names
from inception_keras.data.folder import folder_class_names, folder_examples, folder_files
from inception_keras.data.smoke import ensure_smoke_dataset, smoke_split_sizes
from inception_keras.data.smoke_images import SMOKE_CLASS_NAMES
from inception_keras.data.synthetic import (
    SYNTHETIC_NUM_CLASSES,
    SYNTHETIC_NUM_EVAL_EXAMPLES,
    SYNTHETIC_NUM_TRAIN_EXAMPLES,
    synthetic_examples,
)
from inception_keras.data.tfds_source import (
    prepare,
    supervised_keys,
    tfds_builder,
    tfds_examples,
    tfds_file_names,
    tfds_split_name,
)
from inception_keras.data import tfrecord
from inception_keras.data.tfrecord import tfrecord_examples
from inception_keras.imagenet_classes import (
    IMAGENET_NUM_CLASSES,
    IMAGENET_NUM_EVAL_EXAMPLES,
    IMAGENET_NUM_TRAIN_EXAMPLES,
    imagenet_label_names,
)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    class_names: tuple[str, ...]
    num_train_examples: int | None
    num_eval_examples: int | None


class Source:
    """One kind of dataset. `form` is how its names are written ("tfds:NAME" takes an argument,
    the part after the colon, as the source's one field)."""

    form = ""

    def info(self, data_dir):
        """Classes and split sizes (None where a size is unknown without reading it all)."""
        raise NotImplementedError

    def examples(self, split, options, data_dir, input_context=None):
        """Unbatched (image, class id) examples of this input pipeline, as `options` say."""
        raise NotImplementedError

    def file_names(self, split, data_dir):
        """Every image's file name of a split (str or bytes); DataError if it has none."""
        raise no_file_names(self.form)

    def _check_nameable(self, options):
        if options.exclude:
            raise no_file_names(self.form)


class ImagenetTFRecordSource(Source):
    form = "imagenet_tfrecord"

    def info(self, data_dir):
        return DatasetInfo(
            IMAGENET_NUM_CLASSES,
            imagenet_label_names(),
            IMAGENET_NUM_TRAIN_EXAMPLES,
            IMAGENET_NUM_EVAL_EXAMPLES,
        )

    def examples(self, split, options, data_dir, input_context=None):
        return tfrecord_examples(data_dir, split, options, input_context)

    def file_names(self, split, data_dir):
        return tfrecord.file_names(data_dir, split)


@dataclasses.dataclass(frozen=True)
class TfdsSource(Source):
    name: str
    form = "tfds:NAME"

    def info(self, data_dir):
        builder = tfds_builder(self.name, data_dir)
        prepare(builder, data_dir)  # split sizes are known only once the dataset is built
        label_feature = builder.info.features[supervised_keys(builder)[1]]
        names = (
            imagenet_label_names()
            if self.name.split("/")[0].split(":")[0] == "imagenet2012"
            else tuple(label_feature.names)
        )

        def size(split):
            splits = builder.info.splits
            return splits[tfds_split_name(builder, split)].num_examples if splits else None

        return DatasetInfo(label_feature.num_classes, names, size("train"), size("validation"))

    def examples(self, split, options, data_dir, input_context=None):
        return tfds_examples(self.name, split, options, data_dir, input_context)

    def file_names(self, split, data_dir):
        return tfds_file_names(self.name, split, data_dir)


@dataclasses.dataclass(frozen=True)
class FolderSource(Source):
    root: str
    form = "folder:PATH"

    def info(self, data_dir):
        names = folder_class_names(self.root)
        sizes = [len(folder_files(self.root, split)[0]) for split in ("train", "validation")]
        return DatasetInfo(len(names), names, *sizes)

    def examples(self, split, options, data_dir, input_context=None):
        return folder_examples(self.root, split, options, input_context)

    def file_names(self, split, data_dir):
        return folder_files(self.root, split)[0]


class SyntheticSource(Source):
    form = "synthetic"

    def info(self, data_dir):
        names = tuple(f"class_{i:04d}" for i in range(SYNTHETIC_NUM_CLASSES))
        return DatasetInfo(
            SYNTHETIC_NUM_CLASSES, names, SYNTHETIC_NUM_TRAIN_EXAMPLES, SYNTHETIC_NUM_EVAL_EXAMPLES
        )

    def examples(self, split, options, data_dir, input_context=None):
        self._check_nameable(options)
        return synthetic_examples(options)


class SmokeSource(Source):
    form = "smoke"

    def info(self, data_dir):
        sizes = smoke_split_sizes(ensure_smoke_dataset(data_dir))
        return DatasetInfo(
            len(SMOKE_CLASS_NAMES), SMOKE_CLASS_NAMES, sizes["train"], sizes["validation"]
        )

    def examples(self, split, options, data_dir, input_context=None):
        self._check_nameable(options)
        options = options.with_default_classes(len(SMOKE_CLASS_NAMES))
        return tfrecord_examples(ensure_smoke_dataset(data_dir), split, options, input_context)


SOURCES = (ImagenetTFRecordSource, TfdsSource, FolderSource, SyntheticSource, SmokeSource)
_BY_KIND = {source.form.partition(":")[0]: source for source in SOURCES}
DATASET_FORMS = (
    ", ".join(f'"{source.form}"' for source in SOURCES[:-1]) + f' or "{SOURCES[-1].form}"'
)


def dataset_source(dataset):
    """The `Source` a dataset name means: 'tfds:mnist' -> TfdsSource('mnist'); DataError (one
    line listing the forms) for anything else."""
    kind, sep, argument = str(dataset).partition(":")
    source = _BY_KIND.get(kind)
    if source is not None:
        if ":" in source.form and argument:
            return source(argument)
        if ":" not in source.form and not sep:
            return source()
    raise DataError(f"unknown dataset {dataset!r}; expected {DATASET_FORMS}")


def dataset_info(dataset, data_dir=None):
    """Classes and split sizes of a dataset (None where a size is unknown without reading it all).

    `data_dir` is where the dataset lives (see the table above); `smoke` is built there (None:
    its default folder) if it is not there yet, `tfds:NAME` is prepared.
    """
    return dataset_source(dataset).info(data_dir)


def excluded_count(dataset, data_dir, exclusions):
    """(how many validation images `exclusions` removes, the entries that matched none): one
    pass over the split's file names (the records are read, not decoded)."""
    return count_excluded(dataset_source(dataset).file_names("validation", data_dir), exclusions)
