"""The recipes' optimizer, learning rate and colour distortions against TensorFlow's own reference
implementations: `tf.compat.v1.train.RMSPropOptimizer`, `tf.compat.v1.train.exponential_decay`,
`tf.image.adjust_brightness` / `adjust_saturation` / `rgb_to_hsv` / `rgb_to_yuv`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs import get_config  # noqa: E402
from inception_keras.data import preprocessing  # noqa: E402
from inception_keras.training.step import optimizers, schedules  # noqa: E402

IMAGENET_TRAIN_EXAMPLES = 1281167  # the TPU reference's _NUM_TRAIN_IMAGES
LR = 0.05


# ------------------------------------------------------------------------------------ RMSprop

def random_problem(steps=20, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    start = rng.normal(size=shape).astype("float32")
    grads = (rng.normal(size=(steps,) + shape) * rng.uniform(0.1, 3.0, size=(steps, 1, 1)))
    return start, grads.astype("float32")


def tf1_rmsprop(start, grads, lr=LR):
    """The weights after TF-1's RMSPropOptimizer(lr, decay 0.9, momentum 0.9, epsilon 1.0)."""
    with tf.Graph().as_default():
        weights = tf.compat.v1.Variable(start)
        grad = tf.compat.v1.placeholder(tf.float32, start.shape)
        train = tf.compat.v1.train.RMSPropOptimizer(
            lr, decay=0.9, momentum=0.9, epsilon=1.0).apply_gradients([(grad, weights)])
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for g in grads:
                session.run(train, {grad: g})
            return session.run(weights)


def recipe_optimizer(name):
    return optimizers.make_optimizer(get_config(name), LR)


@pytest.mark.parametrize("name", ["paper", "tpu", "gpu"])
def test_recipe_rmsprop_matches_tf1_rmsprop_optimizer(name):
    start, grads = random_problem()
    weights = keras.Variable(start)
    optimizer = recipe_optimizer(name)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), weights)])
    np.testing.assert_allclose(weights.numpy(), tf1_rmsprop(start, grads), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["paper", "tpu"])
def test_the_trainers_update_path_matches_tf1_rmsprop_optimizer(name):
    """What the trainer's step runs (`LocalUpdate`: the optimizer's update_step per variable,
    no second all-reduce) is the same TF-1 RMSProp."""
    from inception_keras.training.step.updates import LocalUpdate

    start, grads = random_problem()
    weights = keras.Variable(start)
    optimizer = recipe_optimizer(name)
    optimizer.build([weights])
    update = LocalUpdate.single(optimizer, lambda: tf.constant(LR, tf.float32), [weights])
    for g in grads:
        update.apply([tf.constant(g)], [weights])
        update.finish(tf.constant(True))
    np.testing.assert_allclose(weights.numpy(), tf1_rmsprop(start, grads), atol=1e-6, rtol=1e-6)


def test_keras_stock_rmsprop_differs_from_tf1_so_the_comparison_can_fail():
    start, grads = random_problem()
    weights = keras.Variable(start)
    stock = keras.optimizers.RMSprop(LR, rho=0.9, momentum=0.9, epsilon=1.0)
    for g in grads:
        stock.apply_gradients([(tf.constant(g), weights)])
    assert np.abs(weights.numpy() - tf1_rmsprop(start, grads)).max() > 1e-3


def test_tf1_rmsprop_under_mirrored_strategy_and_loss_scaling():
    start, grads = random_problem()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        weights = keras.Variable(start)
        optimizer = keras.optimizers.LossScaleOptimizer(recipe_optimizer("gpu"))
        optimizer.build([weights])

    @tf.function
    def step(g):
        def replica_step(g):  # the trainer's order: scaled gradients in, unscaled by the wrapper
            optimizer.apply_gradients([(g * optimizer.dynamic_scale, weights)])
        strategy.run(replica_step, args=(g,))

    for g in grads:
        step(tf.constant(g))
    np.testing.assert_allclose(weights.numpy(), tf1_rmsprop(start, grads), atol=1e-6, rtol=1e-6)


def test_mean_square_slots_are_checkpointed_and_resume_exactly(tmp_path):
    start, grads = random_problem()
    weights = keras.Variable(start)
    optimizer = recipe_optimizer("paper")
    optimizer.build([weights])
    for g in grads[:10]:
        optimizer.apply_gradients([(tf.constant(g), weights)])
    path = tf.train.Checkpoint(weights=weights, optimizer=optimizer).save(str(tmp_path / "ckpt"))

    weights = keras.Variable(np.zeros_like(start))
    optimizer = recipe_optimizer("paper")
    optimizer.build([weights])  # fresh slots start at 1; the restore must overwrite them
    tf.train.Checkpoint(weights=weights, optimizer=optimizer).restore(path).assert_consumed()
    for g in grads[10:]:
        optimizer.apply_gradients([(tf.constant(g), weights)])
    np.testing.assert_allclose(weights.numpy(), tf1_rmsprop(start, grads), atol=1e-6, rtol=1e-6)


def test_rmsprop_round_trips_through_keras_serialization():
    optimizer = optimizers.RMSprop(0.1, momentum=0.9, epsilon=1.0, initial_mean_square=1.0)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, optimizers.RMSprop) and again.initial_mean_square == 1.0


# ----------------------------------------------------------------------------- learning rate

def reference_steps(decay_steps):
    """Steps around decay boundaries, early, late, and far past the floor."""
    periods = [0, 1, 2, 10, 50, 148, 149, 150, 151, 200]
    steps = {0, 1}
    for k in periods:
        steps.update({max(k * decay_steps - 1, 0), k * decay_steps, k * decay_steps + 1})
    return sorted(steps)


def tpu_reference_learning_rate(batch, steps):
    """The TPU reference's rate, with its own arguments, through TF-1's exponential_decay."""
    initial = 0.165 * batch / 256
    with tf.Graph().as_default():
        step = tf.compat.v1.placeholder(tf.int64, [])
        rate = tf.compat.v1.train.exponential_decay(
            initial, step, int(3 * IMAGENET_TRAIN_EXAMPLES / batch), 0.94, staircase=True)
        rate = tf.maximum(rate, 0.0001 * initial)
        with tf.compat.v1.Session() as session:
            return np.array([session.run(rate, {step: s}) for s in steps]), 0.0001 * initial


@pytest.mark.parametrize("batch", [1024, 4096])
def test_tpu_recipe_rate_is_the_references_at_every_step(batch):
    schedule, _ = schedules.make_schedule(
        get_config("tpu"), global_batch_size=batch,
        steps_per_epoch=IMAGENET_TRAIN_EXAMPLES // batch,
        num_train_examples=IMAGENET_TRAIN_EXAMPLES)
    steps = reference_steps(int(3 * IMAGENET_TRAIN_EXAMPLES / batch))
    expected, floor = tpu_reference_learning_rate(batch, steps)
    assert np.sum(expected == np.float32(floor)) >= 3  # the comparison reaches the floor

    compiled = tf.function(schedule, jit_compile=True)  # as inside the XLA train step
    got = np.array([float(compiled(tf.constant(s, tf.int64))) for s in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def make(config, batch=1024, examples=IMAGENET_TRAIN_EXAMPLES):
    schedule, _ = schedules.make_schedule(config, global_batch_size=batch,
                                          steps_per_epoch=examples // batch,
                                          num_train_examples=examples)
    return lambda s: float(schedule(tf.constant(s, tf.int64)))


def test_tpu_reference_warmup_shape_and_its_return_to_the_decay():
    plain = get_config("tpu")
    warm = plain.replace(warmup="tpu_reference", warmup_epochs=7.0, cold_epochs=2.0)
    warm.validate()
    rate, decayed = make(warm), make(plain)
    epoch = IMAGENET_TRAIN_EXAMPLES / 1024
    start_rate = 0.66 * 0.94 ** ((7 + 2) / 3)  # the reference's adj_initial_learning_rate
    at_epoch = [rate(int(np.ceil(e * epoch))) for e in range(14)]
    np.testing.assert_allclose(at_epoch[:2], [0.1 * start_rate] * 2, rtol=1e-6)  # cold
    assert all(b > a for a, b in zip(at_epoch[1:12], at_epoch[2:12]))  # per-epoch ramp
    np.testing.assert_allclose(np.diff(at_epoch[2:12]), 0.9 * start_rate / 9, rtol=1e-4)
    for e in (12, 13, 40):  # from cold + warm-up + one decay period on: the plain schedule
        s = int(np.ceil(e * epoch)) + 5
        assert rate(s) == pytest.approx(decayed(s), rel=1e-6)


def test_linear_warmup_ramps_into_the_decay_counted_from_step_zero():
    config = get_config("gpu")
    rate = make(config, batch=256)
    plain = make(config.replace(warmup="none", warmup_epochs=0.0), batch=256)
    warmup_steps = round(2.0 * IMAGENET_TRAIN_EXAMPLES / 256)
    for s in (0, 10, warmup_steps // 2, warmup_steps - 1):
        assert rate(s) == pytest.approx(plain(s) * (s + 1) / warmup_steps, rel=1e-5)
    for s in (warmup_steps, warmup_steps + 1, 3 * warmup_steps, 40 * warmup_steps):
        assert rate(s) == pytest.approx(plain(s), rel=1e-6)
    assert plain(warmup_steps) < plain(warmup_steps - 1)  # the decay did not restart


def test_schedule_without_the_full_epoch_uses_the_runs_steps_per_epoch():
    config = get_config("tpu")
    schedule, text = schedules.make_schedule(config, global_batch_size=1024, steps_per_epoch=100,
                                             num_train_examples=IMAGENET_TRAIN_EXAMPLES)
    assert schedule.decay_steps == 300 and "0.165 x 1024/256" in text


# ------------------------------------------------------------------------- colour distortion

def mid_range_image(seed=0, low=0.4, high=0.6):
    """Colours far enough from 0 and 1 that no distortion in range needs clipping; one grey."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(low, high, size=(4, 4, 3)).astype("float32")
    image[0, 0] = 0.5
    return tf.constant(image)


def explains(out, candidate, atol=2e-5):
    return np.allclose(out, tf.clip_by_value(candidate, 0.0, 1.0), atol=atol)


def saturation(rgb):
    return tf.image.rgb_to_hsv(rgb)[..., 1]


def slim_orders(image, out):
    """Which of slim's two fast orderings (TF's adjust_* ops, then a clip) give `out`."""
    delta = float(out[0, 0, 0] - image[0, 0, 0])  # the grey pixel sees the brightness only
    assert abs(delta) <= preprocessing.BRIGHTNESS_MAX_DELTA + 1e-6
    bright = tf.image.adjust_brightness(image, delta)
    orders = {}
    factor = float(saturation(out)[1, 1] / saturation(bright)[1, 1])  # from a mid-range pixel
    if explains(out, tf.image.adjust_saturation(bright, factor)):
        orders["brightness_first"] = factor
    factor = float(saturation(out - delta)[1, 1] / saturation(image)[1, 1])
    if explains(out, tf.image.adjust_brightness(tf.image.adjust_saturation(image, factor), delta)):
        orders["saturation_first"] = factor
    return orders


def test_slim_fast_is_brightness_and_saturation_in_a_random_order():
    image = mid_range_image().numpy()
    # Brightness and HSV saturation commute until saturation reaches 1: strongly coloured
    # pixels make the two orders tell apart when the factor is large.
    image[0, 1:] = [[0.55, 0.05, 0.05], [0.05, 0.5, 0.1], [0.1, 0.1, 0.6]]
    image = tf.constant(image)
    told_apart = []
    for s in range(60):
        out = preprocessing.distort_color_slim_fast(image, tf.constant([s, 7]))
        orders = slim_orders(image, out)
        assert orders, f"seed {s}: not brightness and saturation in either order"
        assert all(0.5 - 1e-4 <= f <= 1.5 + 1e-4 for f in orders.values())
        if len(orders) == 1:
            told_apart += list(orders)
        hue = tf.image.rgb_to_hsv(out)[1:, :, 0] - tf.image.rgb_to_hsv(image)[1:, :, 0]
        assert np.allclose(hue, 0.0, atol=1e-4)  # no hue jitter (slim's slow mode only)
    assert set(told_apart) == {"brightness_first", "saturation_first"}
    assert told_apart.count("saturation_first") > told_apart.count("brightness_first")


def ycbcr(rgb):
    """JPEG YCbCr from TF's BT.601 luma (`rgb_to_yuv`'s Y): Cb = (B - Y) / (2 (1 - Kb)), etc."""
    luma = lambda x: tf.image.rgb_to_yuv(tf.constant(x, tf.float32))[..., 0]  # noqa: E731
    kr, kb = float(luma([1.0, 0.0, 0.0])), float(luma([0.0, 0.0, 1.0]))
    y = luma(rgb)
    return tf.stack([y, (rgb[..., 2] - y) / (2 * (1 - kb)), (rgb[..., 0] - y) / (2 * (1 - kr))], -1)


def test_brightness_and_chroma_shift_moves_y_cb_cr_as_named():
    image = mid_range_image()
    out = preprocessing.shift_brightness_and_chroma(image, 0.05, 0.0, 0.0)
    np.testing.assert_allclose(out, tf.image.adjust_brightness(image, 0.05), atol=1e-6)
    out = preprocessing.shift_brightness_and_chroma(image, 0.0, 0.08, -0.06)
    shift = (ycbcr(out) - ycbcr(image)).numpy().reshape(-1, 3)
    np.testing.assert_allclose(shift, np.tile([0.0, 0.08, -0.06], (16, 1)), atol=1e-5)


def test_tpu_fast_draws_brightness_and_chroma_shifts_in_range():
    image = mid_range_image(low=0.45, high=0.55)  # no clipping for any shift in range
    shifts = []
    for s in range(30):
        out = preprocessing.distort_color_tpu_fast(image, tf.constant([s, 3]))
        shift = (ycbcr(out) - ycbcr(image)).numpy().reshape(-1, 3)
        np.testing.assert_allclose(shift, np.tile(shift[:1], (16, 1)), atol=1e-5)  # one per image
        shifts.append(shift[0])
    shifts = np.array(shifts)
    limits = [preprocessing.BRIGHTNESS_MAX_DELTA] + [preprocessing.CHROMA_MAX_DELTA] * 2
    assert np.all(np.abs(shifts) <= np.array(limits) + 1e-5)
    assert np.all(shifts.min(0) < -0.4 * np.array(limits))  # both signs, most of the range
    assert np.all(shifts.max(0) > 0.4 * np.array(limits))


@pytest.mark.parametrize("mode", ["slim_fast", "tpu_fast"])
def test_distortions_keep_pixels_in_range_and_change_the_image(mode, encoded_image):
    extremes = tf.constant(np.indices((4, 4, 3)).sum(0) % 2, tf.float32)  # pixels at 0 and 1
    distort = {"slim_fast": preprocessing.distort_color_slim_fast,
               "tpu_fast": preprocessing.distort_color_tpu_fast}[mode]
    for s in range(10):
        out = distort(extremes, tf.constant([s, 1])).numpy()
        assert out.min() >= 0.0 and out.max() <= 1.0
    data, seed = encoded_image(40, 60), tf.constant([5, 9])
    plain = preprocessing.preprocess_for_train(data, 24, seed)
    distorted = preprocessing.preprocess_for_train(data, 24, seed, color_distortion=mode)
    assert distorted.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(distorted)) and float(tf.reduce_max(distorted)) <= 1.0
    assert not np.allclose(plain, distorted)


def test_unknown_color_distortion_is_rejected(encoded_image):
    with pytest.raises(ValueError, match="unknown color_distortion"):
        preprocessing.preprocess_for_train(encoded_image(20, 20), 8, color_distortion="fancy")


# ------------------------------------------------------------------------------------- model

@pytest.mark.slow
def test_aux_5x5_conv_starts_like_slim_and_torchvision():
    from inception_keras import build_inception_v3

    keras.utils.set_random_seed(0)
    model = build_inception_v3(input_shape=(75, 75, 3), classes=10, depth_multiplier=0.25)
    kernel = model.get_layer("aux_conv2_conv").kernel.numpy()
    reference = keras.initializers.TruncatedNormal(stddev=0.01, seed=1)(kernel.shape).numpy()
    assert np.abs(kernel).max() <= 0.02  # truncated at two standard deviations
    assert np.std(kernel) == pytest.approx(np.std(reference), rel=0.05)
    he = model.get_layer("aux_conv1_conv").kernel.numpy()  # the rest keep He initialisation
    assert np.std(he) > 5 * np.std(kernel)
