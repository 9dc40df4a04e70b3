"""The images a format export needs: calibration (int8) and agreement (every file format).

`FormatData` holds two callables, each returning a fresh iterable of numpy batches, so nothing
is read before it is needed and one batch at a time is held:
- `calibration()`: float32 image batches [B, S, S, 3] in [-1, 1], the representative dataset of
  int8 quantization;
- `agreement()`: (images, labels) batches on which every file is scored against the Keras
  model; labels are class ids [B] or one-hot [B, classes].

`dataset_format_data` reads them from one of the project's datasets (`make_input_fn`, with the
evaluation preprocessing for both); `array_format_data` takes arrays already in memory.
"""

import dataclasses
from typing import Callable, Iterable

import numpy as np

from inception_keras.export.errors import ExportError

DEFAULT_CALIBRATION_EXAMPLES = 300
DEFAULT_AGREEMENT_EXAMPLES = 1000
BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class FormatData:
    """Calibration and agreement images (see the module doc), and where they come from."""

    calibration: Callable[[], Iterable[np.ndarray]]
    agreement: Callable[[], Iterable[tuple]]
    calibration_examples: int = DEFAULT_CALIBRATION_EXAMPLES  # the most taken from calibration()
    agreement_examples: int = DEFAULT_AGREEMENT_EXAMPLES  # the most taken from agreement()
    description: dict = dataclasses.field(default_factory=dict)  # for the card, e.g. the splits

    def calibration_batches(self):
        """calibration()'s float32 batches, cut to `calibration_examples` images."""
        for (images,) in _cut(((batch,) for batch in self.calibration()), self.calibration_examples):
            yield images.astype(np.float32)

    def agreement_batches(self):
        """agreement()'s (float32 images, int64 class ids), cut to `agreement_examples` images."""
        for images, labels in _cut(self.agreement(), self.agreement_examples):
            yield images.astype(np.float32), class_ids(labels)


def check_counts(**counts):
    """ExportError unless every count (e.g. calibration_examples=300) is a positive integer."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExportError(f"{name} must be a positive integer; received {value!r}.")


def class_ids(labels):
    """Class ids [B] from ids [B] or one-hot / probability rows [B, classes]."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels.argmax(axis=-1).astype(np.int64)
    if labels.ndim == 1:
        return labels.astype(np.int64)
    raise ExportError(f"labels must be class ids [B] or one-hot [B, classes]; got shape {labels.shape}.")


def _cut(batches, limit):
    """Tuples of arrays from `batches`, until `limit` rows in all (the last one cut short)."""
    left = limit
    for batch in batches:
        if left <= 0:
            return
        batch = tuple(np.asarray(part)[:left] for part in batch)
        left -= len(batch[0])
        if len(batch[0]):
            yield batch


def array_format_data(calibration_images, agreement_images, agreement_labels, *,
                      batch_size=BATCH_SIZE, description=None):
    """`FormatData` over arrays in memory (float32 images in [-1, 1]; labels ids or one-hot)."""
    if len(agreement_images) != len(agreement_labels):
        raise ExportError(
            f"agreement_images holds {len(agreement_images)} images but agreement_labels "
            f"{len(agreement_labels)} labels."
        )

    def calibration():
        for start in range(0, len(calibration_images), batch_size):
            yield calibration_images[start : start + batch_size]

    def agreement():
        for start in range(0, len(agreement_images), batch_size):
            yield agreement_images[start : start + batch_size], agreement_labels[start : start + batch_size]

    return FormatData(calibration, agreement, len(calibration_images), len(agreement_images),
                      description or {"source": "arrays"})


def dataset_format_data(dataset, data_dir, image_size, *,
                        calibration_examples=DEFAULT_CALIBRATION_EXAMPLES,
                        agreement_examples=DEFAULT_AGREEMENT_EXAMPLES, seed=0):
    """`FormatData` of a project dataset (a name `make_input_fn` takes, e.g. "smoke").

    calibration: `calibration_examples` images of the training split through the evaluation
    preprocessing (central crop, no augmentation). An image folder lists its files sorted by
    class, so its images are taken evenly across the split (every k-th file from the `seed`-th);
    TFRecord and TFDS splits are read in their stored order, which their builders shuffle.
    agreement: the first `agreement_examples` images of the validation split (all if fewer),
    with their labels.
    Raises ExportError when the dataset cannot be read as given.
    """
    from inception_keras.data import DataError, dataset_info, make_input_fn
    from inception_keras.data.sources import FolderSource, dataset_source

    check_counts(calibration_examples=calibration_examples, agreement_examples=agreement_examples)
    try:
        info = dataset_info(dataset, data_dir)
        options = dict(data_dir=data_dir, image_size=image_size, global_batch_size=BATCH_SIZE,
                       is_training=False, num_classes=info.num_classes, masked=True)
        train_fn = make_input_fn(dataset, split="train", **options)
        validation_fn = make_input_fn(dataset, split="validation", **options)
        by_file = isinstance(dataset_source(dataset), FolderSource)
    except DataError as error:
        raise ExportError(f"dataset {dataset!r}: {error}") from None
    stride = max(1, (info.num_train_examples or 0) // calibration_examples) if by_file else 1

    def calibration():
        import tensorflow as tf

        context = tf.distribute.InputContext(num_input_pipelines=stride,
                                             input_pipeline_id=seed % stride)
        for images, _ in _real_examples(train_fn(context if stride > 1 else None)):
            yield images

    def agreement():
        yield from _real_examples(validation_fn())

    num_eval = info.num_eval_examples
    description = {"dataset": dataset, "calibration_split": "train", "agreement_split": "validation"}
    return FormatData(
        calibration, agreement, calibration_examples,
        min(agreement_examples, num_eval) if num_eval else agreement_examples, description,
    )


def _real_examples(batches):
    """(images, labels) numpy batches of a masked input (`make_input_fn(masked=True)`), without
    its zero-weight padding; ends at the first batch of padding only."""
    for images, labels, weights in batches:
        real = weights.numpy() > 0
        if not real.any():
            return
        yield images.numpy()[real], labels.numpy()[real]
