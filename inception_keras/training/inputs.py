"""The datasets of a run, built from its config through `inception_keras.data.make_input_fn`.

    train = distributed_dataset(setup, split="train", is_training=True)      # forever
    # (with `fault_nan_batches`, the test-only fault injection, some of its batches are NaN)
    validation = distributed_dataset(setup, split="validation", is_training=False)  # one padded pass
    final = evaluation_dataset(setup, validation)      # eval_crops > 1: every crop of each image

One input pipeline per input worker (`distribute_datasets_from_function`); evaluation inputs are
masked (zero-weight padding after the data), so every image counts exactly once.
"""

import keras
import tensorflow as tf

import inception_keras.data as data
from inception_keras.training.errors import TrainerError


AUGMENTATION_KEYS = ("augment", "augment_magnitude", "augment_layers", "random_erasing",
                     "mixup_alpha", "cutmix_alpha", "mix_switch_prob", "mix_prob")


def input_fn(config, info, *, split, is_training, eval_crops=1, dtype=None):
    """Training: (images, labels) batches forever; evaluation: (images, labels, weights), one
    padded pass (see make_input_fn's `masked`). Images come in `dtype` (default: the compute
    dtype of the current Keras policy, so bfloat16/float16 cross to the device at half the
    bytes), augmented first; labels are class ids, or smoothed soft targets when MixUp/CutMix
    mixes them."""
    augmentation = {key: getattr(config, key) for key in AUGMENTATION_KEYS} if is_training \
        else {}
    try:
        return data.make_input_fn(
            config.dataset, data_dir=config.data_dir, split=split, image_size=config.image_size,
            global_batch_size=config.global_batch_size, is_training=is_training,
            dtype=dtype or keras.mixed_precision.dtype_policy().compute_dtype,
            deterministic=config.deterministic, seed=config.seed, num_classes=info.num_classes,
            color_distortion=config.color_distortion if is_training else "none",
            cache_dir=None if is_training else config.cache_dir, masked=not is_training,
            label_smoothing=config.label_smoothing, eval_crops=eval_crops,
            exclude=exclusions(config) if not is_training else frozenset(), **augmentation)
    except data.DataError as error:
        raise TrainerError(str(error)) from None


def distributed_dataset(setup, *, split, is_training, config=None, eval_crops=1):
    config = config or setup.config
    fn = input_fn(config, setup.info, split=split, is_training=is_training, eval_crops=eval_crops)
    if is_training and config.fault_nan_batches:
        fn = with_nan_batches(fn, config.fault_nan_batches)
    try:
        return setup.strategy.distribute_datasets_from_function(fn)
    except data.DataError as error:
        raise TrainerError(str(error)) from None


def with_nan_batches(fn, positions):
    """FAULT INJECTION for tests (`fault_nan_batches`): `fn`'s datasets with the images of the
    batches at `positions` ("5,9": 1-based, counted from the start of each input pipeline's
    stream, so the same steps on every replica) replaced by NaN, as a corrupt batch would be.
    The real training step then computes a NaN loss, the way Model Garden's recovery test gives
    its task a NaN loss; a JPEG or PNG decodes to finite pixels, so a file cannot do it."""
    wanted = tf.constant([int(p) for p in positions.split(",")], tf.int64)

    def poison(index, batch):
        images, *rest = batch
        hit = tf.reduce_any(tf.equal(index + 1, wanted))
        images = images + tf.cast(tf.where(hit, float("nan"), 0.0), images.dtype)
        return (images, *rest)

    return lambda input_context=None: fn(input_context).enumerate().map(poison)


def evaluation_dataset(setup, single_crop):
    """The evaluation input of `eval_crops`: `single_crop` itself, or one whose examples hold
    every crop of an image ([crops, S, S, 3]), with fewer images per batch to bound memory."""
    config = setup.config
    crops = config.eval_crops
    if crops == 1:
        return single_crop
    replicas = setup.replicas
    images = max(config.global_batch_size // crops // replicas, 1) * replicas
    return distributed_dataset(setup, split="validation", is_training=False, eval_crops=crops,
                               config=config.replace(global_batch_size=images))


def ensemble_member_input(setup):
    """One member's evaluation input for `Trainer.probabilities`: one pipeline in file order,
    masked, every crop of each image, fewer images per batch with more crops."""
    config = setup.config
    images = max(config.global_batch_size // config.eval_crops, 1)
    fn = input_fn(config.replace(global_batch_size=images), setup.info, split="validation",
                  is_training=False, eval_crops=config.eval_crops)
    return fn(tf.distribute.InputContext())


def exclusions(config):
    """The file names `eval_exclude` lists (none without it); TrainerError for a bad file."""
    if not config.eval_exclude:
        return frozenset()
    try:
        return data.read_exclusions(config.eval_exclude)
    except data.DataError as error:
        raise TrainerError(str(error)) from None


def excluded_images(config, log):
    """How many validation images `eval_exclude` removes (0 without it), counted over the
    split's file names; logs the entries that match no image (a warning, see exclusion.py)."""
    names = exclusions(config)
    if not names:
        return 0
    try:
        count, unmatched = data.excluded_count(config.dataset, config.data_dir, names)
    except data.DataError as error:
        raise TrainerError(str(error)) from None
    if unmatched:
        shown = ", ".join(unmatched[:3]) + (", ..." if len(unmatched) > 3 else "")
        log(f"warning: eval_exclude: {len(unmatched)} of the {len(names)} entries of "
            f"{config.eval_exclude} match no validation image ({shown})")
    return count


def sample_training_images(setup, count=16):
    """`count` training images after augmentation (numpy, [-1, 1]), for TensorBoard."""
    fn = input_fn(setup.config.replace(global_batch_size=count), setup.info, split="train",
                  is_training=True, dtype="float32")
    for images, *_ in fn(tf.distribute.InputContext()).take(1):
        return tf.cast(images, tf.float32).numpy()[:count]
    return None


def report_folder_problems(config, log):
    """Once per run: the files of a folder dataset that are skipped or cannot be decoded."""
    if not config.dataset.startswith("folder:"):
        return
    from inception_keras.data.folder import describe_folder_problems, folder_problems

    root = config.dataset.split(":", 1)[1]
    problems = folder_problems(root)
    if problems:
        log(describe_folder_problems(problems, root))
