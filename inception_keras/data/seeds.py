"""Per-element stateless seeds for `tf.data` pipelines.

Each element (an example, or a batch) gets its own shape-[2] int64 seed from
`tf.data.Dataset.random`, zipped beside it before the map that uses it: the random ops are
stateless, so an element's randomness depends only on its seed, not on which parallel map call
runs it or when. With a seed the stream is fixed (with `deterministic` element order, the whole
pipeline is reproducible); without one it is random. Streams of one pipeline seed are told
apart by a `stream` number folded into every seed, so the crops, the augmentations and the
batch mixing do not draw the same numbers.
"""

import tensorflow as tf

CROP_STREAM = None  # the first stream, as the crops have always drawn it
AUGMENT_STREAM = 1
MIX_STREAM = 2


def element_seeds(seed, stream=CROP_STREAM):
    """An infinite dataset of shape-[2] int64 seeds (new ones each iteration)."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
        2, drop_remainder=True
    )
    if stream is None:
        return seeds
    return seeds.map(lambda pair: tf.random.experimental.stateless_fold_in(pair, stream))


def map_with_seeds(dataset, fn, seed, stream, *, deterministic):
    """`dataset.map(lambda element: fn(element, element_seed))` in parallel, each element with
    its own seed of `stream`; the order is the input order when `deterministic`."""
    return tf.data.Dataset.zip((dataset, element_seeds(seed, stream))).map(
        fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
