"""Synthetic input for throughput tests: one random (image, one-hot label) pair, repeated.

Generating the tensors once keeps the input far faster than any model, so a run measures the
model and the distribution strategy, not the data.
"""

import tensorflow as tf

SYNTHETIC_NUM_CLASSES = 1000
# ImageNet's split sizes, so a synthetic run has the same epoch length as a real one.
SYNTHETIC_NUM_TRAIN_EXAMPLES = 1_281_167
SYNTHETIC_NUM_EVAL_EXAMPLES = 50_000


def synthetic_dataset(*, image_size, is_training, num_classes=None, seed=None):
    """Unbatched examples: float32 [S, S, 3] in [-1, 1] and a float32 one-hot label.

    Infinite when training; `SYNTHETIC_NUM_EVAL_EXAMPLES` elements otherwise.
    """
    num_classes = num_classes or SYNTHETIC_NUM_CLASSES
    image_seed, label_seed = [seed or 0, 0], [seed or 0, 1]
    image = tf.random.stateless_uniform([image_size, image_size, 3], image_seed, minval=-1.0, maxval=1.0)
    label = tf.random.stateless_uniform([], label_seed, maxval=num_classes, dtype=tf.int32)
    label = tf.one_hot(label, num_classes, dtype=tf.float32)
    dataset = tf.data.Dataset.from_tensors((image, label)).repeat()
    return dataset if is_training else dataset.take(SYNTHETIC_NUM_EVAL_EXAMPLES)
