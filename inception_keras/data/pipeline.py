"""`make_input_fn`: the batched, distributed input the trainer hands to
`strategy.distribute_datasets_from_function`.

Batches are static (`drop_remainder=True`) for training and evaluation alike, as TPUs need.
Training input repeats forever (use `steps_per_epoch`); evaluation input is one pass in file
order, and with `masked=True` its last partial batch is padded with zero-weight examples, so an
evaluation scores every example exactly once.
With `cache_dir`, decoded evaluation examples are cached there as tf.data cache files (one per
dataset, split, image size and input pipeline; float32, about 1 MB per image at 299 px) after
the first complete pass.
"""

import hashlib
import re

import tensorflow as tf

from inception_keras.data.errors import DataError
from inception_keras.data.folder import folder_dataset
from inception_keras.data.info import parse_dataset
from inception_keras.data.sharding import pipeline_position
from inception_keras.data.smoke import ensure_smoke_dataset
from inception_keras.data.smoke_images import SMOKE_CLASS_NAMES
from inception_keras.data.synthetic import synthetic_dataset
from inception_keras.data.tfds_source import tfds_dataset
from inception_keras.data.tfrecord import check_split, tfrecord_dataset
from inception_keras.imagenet_classes import IMAGENET_NUM_CLASSES

OUTPUT_DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_DETERMINISTIC_SEED = 0


def _check_arguments(split, image_size, global_batch_size):
    check_split(split)
    if not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image_size must be a positive int, got {image_size!r}")
    if not isinstance(global_batch_size, int) or global_batch_size < 1:
        raise DataError(f"global_batch_size must be a positive int, got {global_batch_size!r}")


def output_dtype(dtype):
    """The name of an output dtype given as a string or tf/numpy dtype; DataError if unsupported."""
    try:
        name = tf.as_dtype(dtype).name
    except TypeError:
        name = None
    if name not in OUTPUT_DTYPES:
        raise DataError(f"dtype must be one of {OUTPUT_DTYPES}, got {dtype!r}")
    return name


def per_replica_batch_size(global_batch_size, input_context):
    if input_context is None:
        return global_batch_size
    replicas = input_context.num_replicas_in_sync
    if global_batch_size % replicas:
        raise DataError(
            f"global_batch_size {global_batch_size} is not divisible by the {replicas} replicas in sync"
        )
    return input_context.get_per_replica_batch_size(global_batch_size)


def _eval_cache_file(cache_dir, dataset, data_dir, split, image_size, input_context):
    index, count = pipeline_position(input_context)
    key = hashlib.sha1(repr((dataset, data_dir)).encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)[:40]
    tf.io.gfile.makedirs(cache_dir)
    return f"{cache_dir.rstrip('/')}/{name}-{key}-{split}-{image_size}px-{index}of{count}"


def _examples(dataset, *, data_dir, split, input_context, **options):
    kind, argument = parse_dataset(dataset)
    if kind == "synthetic":
        return synthetic_dataset(
            image_size=options["image_size"],
            is_training=options["is_training"],
            num_classes=options["num_classes"],
            seed=options["seed"],
        )
    if kind == "imagenet_tfrecord":
        return tfrecord_dataset(data_dir, split, input_context=input_context, **options)
    if kind == "smoke":
        options["num_classes"] = options["num_classes"] or len(SMOKE_CLASS_NAMES)
        return tfrecord_dataset(
            ensure_smoke_dataset(data_dir), split, input_context=input_context, **options
        )
    if kind == "folder":
        return folder_dataset(argument, split, input_context=input_context, **options)
    return tfds_dataset(argument, split, data_dir=data_dir, input_context=input_context, **options)


def make_input_fn(
    dataset,
    *,
    data_dir,
    split,
    image_size,
    global_batch_size,
    is_training,
    dtype="float32",
    deterministic=False,
    seed=None,
    num_classes=None,
    color_distortion=False,
    cache_dir=None,
    masked=False,
):
    """Returns `input_fn(input_context=None) -> tf.data.Dataset` of (images, one-hot labels).

    images: `dtype` [B, S, S, 3] in [-1, 1]; labels: float32 [B, num_classes]; B is the
    per-replica batch (the global batch without a context). Arguments are checked here, so a
    mistake fails before any strategy is involved. `deterministic=True` fixes the element
    order and augmentation (seed 0 unless `seed` is given). `smoke` is built on first use, with
    `data_dir` as its cache root (None: the default cache). `cache_dir` caches decoded
    evaluation examples (ignored for training, whose crops differ every epoch).

    `masked=True` (evaluation) yields (images, labels, weights) instead: the examples with
    weight 1, then zero images with weight 0 forever, so the last partial batch is padded to
    the static batch shape and nothing is dropped. Every input pipeline pads, so all replicas
    keep stepping together until the slowest pipeline is done; the consumer stops at the first
    batch that holds no real example (see `inception_keras.training.steps`).
    """
    _check_arguments(split, image_size, global_batch_size)
    dtype = output_dtype(dtype)
    if parse_dataset(dataset)[0] == "imagenet_tfrecord" and num_classes is None:
        num_classes = IMAGENET_NUM_CLASSES
    if deterministic and seed is None:
        seed = DEFAULT_DETERMINISTIC_SEED

    def input_fn(input_context=None):
        examples = _examples(
            dataset,
            data_dir=data_dir,
            split=split,
            input_context=input_context,
            image_size=image_size,
            is_training=is_training,
            num_classes=num_classes,
            seed=seed,
            deterministic=deterministic,
            color_distortion=color_distortion,
        )
        if cache_dir and not is_training:
            examples = examples.cache(
                _eval_cache_file(cache_dir, dataset, data_dir, split, image_size, input_context)
            )
        if masked:
            examples = _pad_forever(examples)
        batch_size = per_replica_batch_size(global_batch_size, input_context)
        batches = examples.batch(batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE)
        # The cast comes last: the random and image ops above need float32.
        batches = batches.map(lambda images, *rest: (tf.cast(images, dtype), *rest))
        return batches.prefetch(tf.data.AUTOTUNE).with_options(_options(deterministic, input_context))

    return input_fn


def _pad_forever(examples):
    """(image, label) examples -> (image, label, 1.0), then (zeros, zeros, 0.0) repeated."""
    real = examples.map(lambda image, label: (image, label, tf.constant(1.0)))
    zeros = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype),
                                  examples.element_spec)
    padding = tf.data.Dataset.from_tensors((*zeros, tf.constant(0.0))).repeat()
    return real.concatenate(padding)


def _options(deterministic, input_context):
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:
        # Sharded by file above; tf.distribute must not shard again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options
