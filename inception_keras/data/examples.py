"""The stage every source shares: (encoded image, label) records -> (image, one-hot label).

Training: shuffle, per-element stateless seeds, Inception train preprocessing, then repeat
forever (after decoding, so an input whose every record is corrupt ends instead of spinning).
Evaluation: one pass in file order with the central-crop preprocessing.
"""

import tensorflow as tf

from inception_keras.data.corrupt import map_dropping_corrupt
from inception_keras.data.preprocessing import preprocess_for_eval, preprocess_for_train

SHUFFLE_BUFFER_SIZE = 8192


def one_hot_label(label, num_classes):
    """0-based integer label -> float32 one-hot; fails (so the record is dropped) when out of range."""
    label = tf.cast(label, tf.int32)
    checks = [
        tf.debugging.assert_non_negative(label, message="negative label"),
        tf.debugging.assert_less(label, num_classes, message="label >= num_classes"),
    ]
    with tf.control_dependencies(checks):
        return tf.one_hot(label, num_classes, dtype=tf.float32)


def to_examples(
    records,
    extract,
    *,
    image_size,
    is_training,
    num_classes,
    seed=None,
    deterministic=False,
    color_distortion=False,
    shuffle=True,
):
    """Decodes a dataset of records into unbatched (float32 [S, S, 3] in [-1, 1], one-hot) pairs.

    `extract(record)` returns (encoded image bytes, 0-based label) and may fail on a corrupt
    record: such records are dropped and counted (see `corrupt.py`). `shuffle=False` skips the
    record shuffle (for sources that already shuffle everything, e.g. a file list).
    """
    placeholder = (tf.zeros([image_size, image_size, 3]), tf.zeros([num_classes]))
    if not is_training:

        def eval_example(record):
            image_bytes, label = extract(record)
            return preprocess_for_eval(image_bytes, image_size), one_hot_label(label, num_classes)

        # zip((records,)) passes each record as one argument, whatever its own structure.
        return map_dropping_corrupt(
            tf.data.Dataset.zip((records,)), eval_example, placeholder, deterministic=True
        )

    def train_example(record, example_seed):
        image_bytes, label = extract(record)
        image = preprocess_for_train(
            image_bytes, image_size, example_seed, color_distortion=color_distortion
        )
        return image, one_hot_label(label, num_classes)

    if shuffle:
        records = records.shuffle(SHUFFLE_BUFFER_SIZE, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
        2, drop_remainder=True
    )
    examples = map_dropping_corrupt(
        tf.data.Dataset.zip((records, seeds)), train_example, placeholder, deterministic=deterministic
    )
    return examples.repeat()
