"""Training augmentation of make_input_fn: RandAugment, AugMix, random erasing, MixUp, CutMix.

Batches come from tiny TFRecord shards of noise images (every pixel differs between images, so a
mixed image tells how it was mixed), deterministic with a seed; the unaugmented batches of the
same seed are the reference.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data import DataError, make_input_fn, serialize_example
from inception_keras.data import image_ops
from inception_keras.data.mixing import smoothed_one_hot, stateless_beta

SIZE = 32
CLASSES = 4
BATCH = 4
EPS = 0.1


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    directory = tmp_path_factory.mktemp("augment_shards")
    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        for shard in range(2):
            path = directory / f"{split}-{shard:05d}-of-00002"
            with tf.io.TFRecordWriter(str(path)) as writer:
                for index in range(6):
                    pixels = rng.integers(0, 256, (36, 44, 3)).astype(np.uint8)
                    label = (shard * 6 + index) % CLASSES + 1
                    writer.write(serialize_example(tf.io.encode_png(pixels).numpy(), label,
                                                   height=36, width=44))
    return str(directory)


def _input_fn(shards, **overrides):
    arguments = dict(data_dir=shards, split="train", image_size=SIZE, global_batch_size=BATCH,
                     is_training=True, num_classes=CLASSES, deterministic=True, seed=1)
    return make_input_fn("imagenet_tfrecord", **{**arguments, **overrides})


def _batches(shards, count=2, **overrides):
    """[(float32 images, labels, images' dtype name)] of the first `count` batches."""
    return [(tf.cast(images, tf.float32).numpy(), labels.numpy(), images.dtype.name)
            for images, labels in _input_fn(shards, **overrides)(None).take(count)]


@pytest.fixture(scope="module")
def plain(shards):
    """The unaugmented batches (int32 class ids) that every augmented pipeline of seed 1 starts
    from."""
    return _batches(shards, count=4)


def _check_per_image_augmentation(batches, plain, dtype):
    """Shapes, dtype, range and class ids kept; images changed."""
    for (images, labels, got_dtype), (reference, ids, _) in zip(batches, plain, strict=False):
        assert got_dtype == dtype and images.shape == (BATCH, SIZE, SIZE, 3)
        assert images.min() >= -1.0 and images.max() <= 1.0
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, ids)
        # changed by far more than the output dtype's rounding (AugMix may keep much of an
        # image, and equalizing noise changes little)
        changes = np.abs(images - reference).reshape(BATCH, -1)
        assert changes.mean() > 0.02 and np.sum(changes.max(axis=1) > 0.05) >= BATCH // 2


def test_random_erasing_keeps_shapes_range_and_ids(shards, plain):
    _check_per_image_augmentation(_batches(shards, random_erasing=1.0), plain, "float32")


@pytest.mark.slow
@pytest.mark.parametrize("policy,dtype", [("randaugment", "bfloat16"), ("augmix", "float16")])
def test_policies_keep_shapes_range_and_ids_and_are_reproducible(shards, plain, policy, dtype):
    _check_per_image_augmentation(
        _batches(shards, dtype=dtype, augment=policy, augment_magnitude=5, augment_layers=3),
        plain, dtype)
    # with random erasing and both mixings, all parallel maps: the same seed, the same batches
    options = dict(count=3, augment=policy, random_erasing=0.5, cutmix_alpha=1.0, mixup_alpha=0.4)
    first, again = _batches(shards, **options), _batches(shards, **options)
    other = _batches(shards, seed=2, **options)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not any(np.array_equal(a[0], c[0]) for a, c in zip(first, other, strict=True))


def _mixup_lambda(mixed, images):
    """Each image's lambda of mixed = lambda x + (1 - lambda) x_reversed, least squares."""
    partners = images[::-1]
    difference = (images - partners).reshape(len(images), -1)
    return np.sum((mixed - partners).reshape(len(images), -1) * difference, axis=1) / np.sum(
        difference**2, axis=1)


def _expected_targets(ids, lam):
    smooth = smoothed_one_hot(ids, CLASSES, EPS).numpy()
    return lam * smooth + (1.0 - lam) * smooth[::-1]


def test_mixup_smooths_once_then_mixes_labels_as_the_images(shards, plain):
    mixed_batches = _batches(shards, count=3, mixup_alpha=1.0, label_smoothing=EPS,
                             dtype="bfloat16")
    for (mixed, targets, dtype), (images, ids, _) in zip(mixed_batches, plain, strict=False):
        assert dtype == "bfloat16" and targets.dtype == np.float32
        assert targets.shape == (BATCH, CLASSES)
        lam = _mixup_lambda(mixed, images)
        assert np.ptp(lam) < 0.02 and 0.0 <= lam[0] <= 1.0  # one lambda per batch
        np.testing.assert_allclose(targets, _expected_targets(ids, lam[0]), atol=0.01)
        np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    lams = [_mixup_lambda(mixed, images)[0]
            for (mixed, _, _), (images, _, _) in zip(mixed_batches, plain, strict=False)]
    assert np.ptp(lams) > 0.1  # a new lambda per batch


def _cutmix_lambda(mixed, images):
    """1 - the share of pixels taken from the partner, and whether all the rest are the
    image's own."""
    from_partner = np.all(mixed == images[::-1], axis=-1)
    own = np.all(mixed == images, axis=-1)
    return 1.0 - from_partner[0].mean(), bool(np.all(from_partner | own))


def test_cutmix_lambda_is_the_pasted_box_area(shards, plain):
    for (mixed, targets, _), (images, ids, _) in zip(
            _batches(shards, count=3, cutmix_alpha=1.0, label_smoothing=EPS), plain,
            strict=False):
        lam, only_box = _cutmix_lambda(mixed, images)
        assert only_box
        np.testing.assert_allclose(targets, _expected_targets(ids, lam), atol=1e-6)


def test_switch_chooses_cutmix_or_mixup_per_batch(shards, plain):
    kinds = []
    for (mixed, targets, _), (images, ids, _) in zip(
            _batches(shards, count=4, mixup_alpha=0.4, cutmix_alpha=1.0, mix_switch_prob=0.5,
                     label_smoothing=EPS), plain, strict=True):
        lam, only_box = _cutmix_lambda(mixed, images)
        if not only_box:
            lam = _mixup_lambda(mixed, images)[0]
        kinds.append("cutmix" if only_box else "mixup")
        np.testing.assert_allclose(targets, _expected_targets(ids, lam), atol=0.01)
    assert set(kinds) == {"cutmix", "mixup"}


def test_unmixed_batches_get_smoothed_one_hots(shards, plain):
    for (images, targets, _), (reference, ids, _) in zip(
            _batches(shards, mixup_alpha=1.0, mix_prob=0.0, label_smoothing=EPS), plain,
            strict=False):
        np.testing.assert_array_equal(images, reference)
        on_class = np.take_along_axis(targets, ids[:, None], axis=1)
        np.testing.assert_allclose(on_class, 1.0 - EPS + EPS / CLASSES, rtol=1e-6)
        np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
        assert np.isclose(np.sort(targets, axis=1)[:, :-1], EPS / CLASSES).all()


def test_evaluation_input_ignores_the_augmentation_keys(shards):
    keys = dict(augment="randaugment", random_erasing=1.0, mixup_alpha=1.0, cutmix_alpha=1.0,
                label_smoothing=EPS)
    evaluation = dict(split="validation", is_training=False, masked=True, deterministic=False)
    plain_batches = list(_input_fn(shards, **evaluation)(None).take(4))
    keyed_batches = list(_input_fn(shards, **evaluation, **keys)(None).take(4))
    for plain_batch, keyed_batch in zip(plain_batches, keyed_batches, strict=True):
        for expected, got in zip(plain_batch, keyed_batch, strict=True):
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert keyed_batches[0][1].dtype == tf.int32


def test_mixing_on_synthetic_input_takes_the_datasets_classes():
    input_fn = make_input_fn("synthetic", data_dir=None, split="train", image_size=SIZE,
                             global_batch_size=2, is_training=True, cutmix_alpha=1.0,
                             dtype="float16")
    images, targets = next(iter(input_fn(None)))
    assert images.dtype == tf.float16 and targets.shape == (2, 1000)
    np.testing.assert_allclose(tf.reduce_sum(targets, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("overrides,match", [
    ({"augment": "autoaugment"}, "unknown augment policy 'autoaugment'; use one of none, "),
    ({"augment_magnitude": 10.5}, r"augment_magnitude must be a number in \[0.0, 10.0\]"),
    ({"augment_magnitude": -1}, "augment_magnitude"),
    ({"augment_magnitude": "9"}, "augment_magnitude"),
    ({"augment_layers": 0}, "augment_layers must be an integer >= 1, got 0"),
    ({"augment_layers": 1.5}, "augment_layers"),
    ({"random_erasing": 1.5}, r"random_erasing must be a number in \[0.0, 1.0\]"),
    ({"mixup_alpha": -0.2}, "mixup_alpha must be a number >= 0.0, got -0.2"),
    ({"cutmix_alpha": float("nan")}, "cutmix_alpha"),
    ({"mix_switch_prob": 1.1}, "mix_switch_prob"),
    ({"mix_prob": -0.5}, "mix_prob"),
    ({"label_smoothing": 2.0}, "label_smoothing"),
])
def test_bad_values_are_one_line_errors(shards, overrides, match):
    for is_training in (True, False):  # checked for evaluation input too
        with pytest.raises(DataError, match=match) as error:
            _input_fn(shards, is_training=is_training, **overrides)
        assert "\n" not in str(error.value)


def test_beta_samples_stay_finite_for_tiny_alphas():
    seeds = tf.random.experimental.stateless_split(tf.constant([3, 4], tf.int64), 200)
    tiny = np.array([float(stateless_beta(seed, 1e-3)) for seed in seeds])
    uniform = np.array([float(stateless_beta(seed, 1.0)) for seed in seeds])
    # Beta(0.001, 0.001) puts 99.3% of its mass within 0.001 of 0 or 1, half at each end
    assert np.all(np.isfinite(tiny)) and np.mean(np.minimum(tiny, 1.0 - tiny) < 1e-3) > 0.95
    assert 0.3 < tiny.mean() < 0.7
    assert abs(uniform.mean() - 0.5) < 0.06 and abs(uniform.var() - 1.0 / 12.0) < 0.02


@pytest.mark.parametrize("alpha,bound", [(0.2, 0.05), (4.0, 0.012)])
def test_mixup_lambda_follows_beta_of_the_configured_alpha(alpha, bound):
    """The batch's lambda ~ Beta(alpha, alpha), variance 1 / (4 (2 alpha + 1)): 0.179 at 0.2,
    0.028 at 4; alpha 1 (0.083) lies outside both bounds."""
    from inception_keras.data.mixing import Mixing, mix_batch

    images = tf.constant([1.0, 0.0])[:, None, None, None]  # mixed image 0 = lambda
    mixing = Mixing(mixup_alpha=alpha)
    seeds = tf.random.experimental.stateless_split(tf.constant([5, 6], tf.int64), 200)
    lams = np.array([float(mix_batch(images, tf.constant([0, 1]), seed, mixing, 2)[0][0, 0, 0, 0])
                     for seed in seeds])
    variance = 1.0 / (4.0 * (2.0 * alpha + 1.0))
    assert abs(lams.var() - variance) < bound, (lams.var(), variance)
    assert abs(lams.mean() - 0.5) < 0.08


# --- The ops against PIL's ImageOps and ImageEnhance ------------------------------------------


@pytest.fixture(scope="module")
def pil_image():
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(5)
    pixels = np.clip(rng.normal(110, 40, (20, 24, 3)), 0, 255).astype(np.uint8)
    return image_module.fromarray(pixels)


def _ours(op, image, strength=0.9, seed=(1, 2)):
    unit = tf.constant(np.asarray(image), tf.float32) / 255.0
    return op(unit, strength, tf.constant(seed, tf.int64)).numpy() * 255.0


@pytest.mark.parametrize("name", ["equalize", "auto_contrast", "posterize", "solarize"])
def test_ops_without_random_sign_match_pil(pil_image, name):
    from PIL import ImageOps

    expected = {
        "equalize": lambda: ImageOps.equalize(pil_image),
        "auto_contrast": lambda: ImageOps.autocontrast(pil_image),
        "posterize": lambda: ImageOps.posterize(pil_image, 8 - int(4 * 0.9)),
        "solarize": lambda: ImageOps.solarize(pil_image, 256 * (1 - 0.9)),
    }[name]()
    tolerance = 1.0 if name == "auto_contrast" else 1e-3  # PIL truncates its lookup table
    np.testing.assert_allclose(_ours(getattr(image_ops, name), pil_image), np.asarray(expected),
                               atol=tolerance)


@pytest.mark.parametrize("name", ["brightness", "color", "contrast", "sharpness"])
def test_enhancers_match_pil_at_the_factor_of_their_sign(pil_image, name):
    from PIL import ImageEnhance

    seed = (4, 2)
    sign = float(image_ops.random_signs(tf.constant(seed, tf.int64), 1)[0])
    factor = 1.0 + sign * 0.9 * 0.5
    expected = getattr(ImageEnhance, name.capitalize())(pil_image).enhance(factor)
    got = _ours(getattr(image_ops, name), pil_image, strength=0.5, seed=seed)
    np.testing.assert_allclose(got, np.asarray(expected), atol=2.0)  # PIL rounds to uint8 twice


def test_translate_shifts_by_its_share_of_the_side_and_fills_grey():
    image = tf.random.stateless_uniform([20, 20, 3], [0, 1])
    seed = tf.constant([0, 3], tf.int64)
    sign_x, sign_y = image_ops.random_signs(seed, 2).numpy()
    moved = image_ops.translate(image, 1.0, seed).numpy()  # 0.45 * 20 = 9 pixels each way
    shift_y, shift_x = int(9 * sign_y), int(9 * sign_x)
    expected = np.full((20, 20, 3), 0.5, np.float32)
    rows = slice(max(shift_y, 0), 20 + min(shift_y, 0))
    columns = slice(max(shift_x, 0), 20 + min(shift_x, 0))
    source_rows = slice(max(-shift_y, 0), 20 + min(-shift_y, 0))
    source_columns = slice(max(-shift_x, 0), 20 + min(-shift_x, 0))
    expected[rows, columns] = image.numpy()[source_rows, source_columns]
    np.testing.assert_allclose(moved, expected, atol=1e-6)


@pytest.mark.parametrize("name", ["rotate", "shear"])
def test_rotate_and_shear_keep_the_centre_and_move_the_rest(name):
    image = tf.random.stateless_uniform([21, 21, 3], [0, 2])
    op = getattr(image_ops, name)
    np.testing.assert_allclose(op(image, 0.0, tf.constant([1, 1], tf.int64)), image, atol=1e-6)
    moved = op(image, 1.0, tf.constant([1, 1], tf.int64)).numpy()
    np.testing.assert_allclose(moved[10, 10], image.numpy()[10, 10], atol=1e-5)
    assert np.abs(moved - image.numpy()).mean() > 0.1
