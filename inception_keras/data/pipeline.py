"""`make_input_fn`: the batched, distributed input the trainer hands to
`strategy.distribute_datasets_from_function`.

Batches are static (`drop_remainder=True`) for training and evaluation alike, as TPUs need.
Training input repeats forever (use `steps_per_epoch`); evaluation input is one pass in file
order, and with `masked=True` its last partial batch is padded with zero-weight examples, so an
evaluation scores every example exactly once.
Labels are int32 class ids, except in training with MixUp or CutMix on: float32 soft targets,
label smoothing already applied (`mixing.py`). Training augmentation runs here, on the host:
per image (`augment.py`) after the Inception crop, per batch (`mixing.py`) after batching, each
element with its own stateless seed (`seeds.py`). Images are cast to the output dtype last, as
the random and image ops need float32.
The dataset's name goes through the one registry of sources (`sources.py`), the example options
travel as one `ExampleOptions` (`examples.py`). `data_dir` is where the dataset lives;
`cache_dir` is only where decoded single-crop evaluation examples are cached, as tf.data cache
files (one per dataset, split, image size and input pipeline; float32, about 1 MB per image at
299 px) after the first complete pass.
"""

import hashlib
import re

import tensorflow as tf

from inception_keras.data.augment import Augmentation, augment_examples
from inception_keras.data.errors import DataError
from inception_keras.data.examples import ExampleOptions
from inception_keras.data.mixing import Mixing, mix_batches
from inception_keras.data.sharding import pipeline_position, pipeline_seed
from inception_keras.data.sources import dataset_source
from inception_keras.data.tfrecord import check_split

OUTPUT_DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_DETERMINISTIC_SEED = 0


def _check_batch_size(global_batch_size):
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
    eval_crops=1,
    exclude=frozenset(),
    augment="none",
    augment_magnitude=9.0,
    augment_layers=2,
    random_erasing=0.0,
    mixup_alpha=0.0,
    cutmix_alpha=0.0,
    mix_switch_prob=0.5,
    mix_prob=1.0,
    label_smoothing=0.0,
):
    """Returns `input_fn(input_context=None) -> tf.data.Dataset` of (images, labels).

    images: `dtype` [B, S, S, 3] in [-1, 1]; labels: int32 class ids [B], or, in training with
    `mixup_alpha` or `cutmix_alpha` > 0, float32 soft targets [B, num_classes] that sum to 1
    (`label_smoothing` applied to each one-hot before mixing: the loss must not smooth them
    again; class ids are left for the loss to smooth). B is the per-replica batch (the global
    batch without a context). Arguments are checked here, so a mistake fails before any
    strategy is involved. `data_dir` is where the dataset lives (see
    `sources.py`; `smoke` is built there on first use, None: its default folder).
    `deterministic=True` fixes the element order and augmentation (seed 0 unless `seed` is
    given). `cache_dir` caches decoded evaluation examples (ignored for training, whose crops
    differ every epoch, for multi-crop evaluation, 10 to 144 times the size, and with
    `exclude`, whose cache would hold another set of images under the same name).

    Training augmentation (ignored by evaluation input, still checked): `augment` is "none",
    "randaugment" or "augmix" at `augment_magnitude` on timm's 0-10 scale, with
    `augment_layers` ops per image for RandAugment (`augment.py`); `random_erasing` is the
    probability per image of erasing a rectangle; `mixup_alpha` and `cutmix_alpha` are the
    Beta(alpha, alpha) of MixUp and CutMix (0: off), `mix_switch_prob` the chance a batch uses
    CutMix when both are on, `mix_prob` the chance a batch is mixed at all (`mixing.py`).

    `eval_crops` of 10, 12 or 144 (evaluation only) makes each example every crop of
    `multicrop.multi_crop`: images are [B, crops, S, S, 3], B counting images, not crops.
    `exclude` (evaluation only): file names of images to leave out (`exclusion.py`).

    `masked=True` (evaluation) yields (images, labels, weights) instead: the examples with
    weight 1, then zero images with weight 0 forever, so the last partial batch is padded to
    the static batch shape and nothing is dropped. Every input pipeline pads, so all replicas
    keep stepping together until the slowest pipeline is done; the consumer stops at the first
    batch that holds no real example (see `inception_keras.training.step.steps`).
    """
    check_split(split)
    options = ExampleOptions(
        image_size=image_size,
        is_training=is_training,
        num_classes=num_classes,
        seed=DEFAULT_DETERMINISTIC_SEED if deterministic and seed is None else seed,
        deterministic=deterministic,
        color_distortion=color_distortion,
        eval_crops=eval_crops,
        exclude=frozenset(exclude),
    )
    _check_batch_size(global_batch_size)
    dtype = output_dtype(dtype)
    source = dataset_source(dataset)
    cache = cache_dir if not is_training and eval_crops == 1 and not exclude else None
    augmentation = Augmentation(augment, augment_magnitude, augment_layers, random_erasing)
    mixing = Mixing(mixup_alpha, cutmix_alpha, mix_switch_prob, mix_prob, label_smoothing)
    if not is_training:
        augmentation, mixing = Augmentation(), Mixing()

    def input_fn(input_context=None):
        examples = source.examples(split, options, data_dir, input_context)
        seed = pipeline_seed(options.seed, input_context)
        examples = augment_examples(examples, augmentation, seed, deterministic=deterministic)
        if cache:
            examples = examples.cache(
                _eval_cache_file(cache, dataset, data_dir, split, image_size, input_context)
            )
        if masked:
            examples = _pad_forever(examples)
        batch_size = per_replica_batch_size(global_batch_size, input_context)
        # Evaluation batches keep file order whatever `deterministic` says: a padding batch
        # overtaking a real one would end a masked evaluation early.
        batches = examples.batch(
            batch_size,
            drop_remainder=True,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True if not is_training else None,
        )
        if mixing.enabled:
            classes = num_classes or source.info(data_dir).num_classes
            batches = mix_batches(batches, mixing, classes, seed, deterministic=deterministic)
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
