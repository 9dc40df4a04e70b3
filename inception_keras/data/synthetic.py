"""Synthetic input for throughput tests: one random (image, class id) pair, repeated.

Generating the tensors once keeps the input far faster than any model, so a run measures the
model and the distribution strategy, not the data.
"""

import tensorflow as tf

from inception_keras.data.examples import ExampleOptions
from inception_keras.imagenet_classes import (
    IMAGENET_NUM_CLASSES,
    IMAGENET_NUM_EVAL_EXAMPLES,
    IMAGENET_NUM_TRAIN_EXAMPLES,
)

# ImageNet's sizes, so a synthetic run has the same classes and epoch length as a real one.
SYNTHETIC_NUM_CLASSES = IMAGENET_NUM_CLASSES
SYNTHETIC_NUM_TRAIN_EXAMPLES = IMAGENET_NUM_TRAIN_EXAMPLES
SYNTHETIC_NUM_EVAL_EXAMPLES = IMAGENET_NUM_EVAL_EXAMPLES


def synthetic_dataset(**options):
    """Unbatched examples: float32 images in [-1, 1] and int32 class ids.

    `options` are `ExampleOptions`' fields (image_size and is_training at least; the seed picks
    the pair). Images are [S, S, 3] ([crops, S, S, 3] with `eval_crops`). Infinite when
    training; `SYNTHETIC_NUM_EVAL_EXAMPLES` elements otherwise.
    """
    return synthetic_examples(ExampleOptions(**options))


def synthetic_examples(options):
    """`synthetic_dataset` with its options as one `ExampleOptions`."""
    options = options.with_default_classes(SYNTHETIC_NUM_CLASSES)
    seed = options.seed or 0
    image = tf.random.stateless_uniform(options.image_shape, [seed, 0], minval=-1.0, maxval=1.0)
    label = tf.random.stateless_uniform([], [seed, 1], maxval=options.num_classes, dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensors((image, label)).repeat()
    return dataset if options.is_training else dataset.take(SYNTHETIC_NUM_EVAL_EXAMPLES)
