"""The stage every source shares: (encoded image, label) records -> (image, class id).

`ExampleOptions` says what the examples look like; one frozen object travels from
`make_input_fn` through the source to `to_examples`.
Training: shuffle, per-element stateless seeds, Inception train preprocessing, then repeat
forever (after decoding, so an input whose every record is corrupt ends instead of spinning).
Evaluation: one pass in file order with the central-crop preprocessing, or with `eval_crops` of
10, 12 or 144 every crop of `multi_crop` (an example's image is then [crops, S, S, 3]).
"""

import dataclasses

import tensorflow as tf

from inception_keras.data.corrupt import map_dropping_corrupt
from inception_keras.data.errors import DataError
from inception_keras.data.multicrop import check_crops, multi_crop
from inception_keras.data.preprocessing import preprocess_for_eval, preprocess_for_train
from inception_keras.data.seeds import element_seeds
from inception_keras.data.sharding import pipeline_seed

SHUFFLE_BUFFER_SIZE = 8192


def class_id(label, num_classes):
    """0-based integer label -> int32 class id; fails (so the record is dropped) when out of range."""
    label = tf.cast(label, tf.int32)
    checks = [
        tf.debugging.assert_non_negative(label, message="negative label"),
        tf.debugging.assert_less(label, num_classes, message="label >= num_classes"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(label)


@dataclasses.dataclass(frozen=True)
class ExampleOptions:
    """What every example of an input looks like; checked on creation (DataError).

    image_size: S, the side of the square output images.
    is_training: random crops, shuffled and repeated forever; else one pass of evaluation crops.
    num_classes: class ids are 0..num_classes-1 (larger ones are dropped as corrupt); None: the
        dataset's own number of classes.
    seed: of the shuffles and augmentations (None: random); each input pipeline offsets it.
    deterministic: a fixed element order (with a seed, fixed augmentations too).
    color_distortion: training's colour distortion, see `preprocessing.COLOR_DISTORTIONS`.
    eval_crops: evaluation only: 1, the central crop ([S, S, 3]); 10, 12 or 144, every crop of
        `multicrop.multi_crop` ([crops, S, S, 3]).
    exclude: evaluation only: the file names of images to leave out (`exclusion.py`).
    """

    image_size: int
    is_training: bool
    num_classes: int | None = None
    seed: int | None = None
    deterministic: bool = False
    color_distortion: str | bool = "none"
    eval_crops: int = 1
    exclude: frozenset = frozenset()  # evaluation only: file names left out (exclusion.py)

    def __post_init__(self):
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise DataError(f"image_size must be a positive int, got {self.image_size!r}")
        try:
            check_crops(self.eval_crops)
        except ValueError as error:
            raise DataError(str(error)) from None
        if self.eval_crops != 1 and self.is_training:
            raise DataError(
                f"eval_crops={self.eval_crops} is for evaluation input; training input "
                "(is_training=True) takes one random crop per image"
            )
        if self.exclude and self.is_training:
            raise DataError("eval_exclude leaves images out of evaluation input, not training")

    @property
    def image_shape(self):
        """[S, S, 3], or [crops, S, S, 3] with multi-crop evaluation."""
        image = [self.image_size, self.image_size, 3]
        return image if self.eval_crops == 1 else [self.eval_crops, *image]

    def with_default_classes(self, num_classes):
        """These options with `num_classes` where they leave it to the dataset (None)."""
        return self if self.num_classes else dataclasses.replace(self, num_classes=num_classes)

    def for_pipeline(self, input_context):
        """These options with this input pipeline's seed (see `sharding.pipeline_seed`)."""
        return dataclasses.replace(self, seed=pipeline_seed(self.seed, input_context))


def eval_image(image_bytes, options):
    """The evaluation image(s) of encoded bytes: `options.image_shape`, float32 in [-1, 1]."""
    if options.eval_crops == 1:
        return preprocess_for_eval(image_bytes, options.image_size)
    return multi_crop(image_bytes, options.image_size, options.eval_crops)


def to_examples(records, extract, options, *, shuffle=True):
    """Decodes a dataset of records into unbatched (float32 image in [-1, 1], int32 class id) pairs.

    Images are `options.image_shape`. `extract(record)` returns (encoded image bytes, 0-based
    label) and may fail on a corrupt record: such records are dropped and counted (see
    `corrupt.py`). `shuffle=False` skips the record shuffle (for sources that already shuffle
    everything, e.g. a file list).
    """
    num_classes = options.num_classes
    placeholder = (tf.zeros(options.image_shape), tf.zeros([], tf.int32))
    if not options.is_training:

        def eval_example(record):
            image_bytes, label = extract(record)
            return eval_image(image_bytes, options), class_id(label, num_classes)

        # zip((records,)) passes each record as one argument, whatever its own structure.
        return map_dropping_corrupt(
            tf.data.Dataset.zip((records,)), eval_example, placeholder, deterministic=True
        )

    def train_example(record, example_seed):
        image_bytes, label = extract(record)
        image = preprocess_for_train(
            image_bytes, options.image_size, example_seed, color_distortion=options.color_distortion
        )
        return image, class_id(label, num_classes)

    if shuffle:
        records = records.shuffle(SHUFFLE_BUFFER_SIZE, seed=options.seed, reshuffle_each_iteration=True)
    seeds = element_seeds(options.seed)
    examples = map_dropping_corrupt(
        tf.data.Dataset.zip((records, seeds)),
        train_example,
        placeholder,
        deterministic=options.deterministic,
    )
    return examples.repeat()
