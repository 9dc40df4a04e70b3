"""The trainer's own step (inception_keras.training.step.steps) on tiny models, one device here;
two replicas (clipping after the all-reduce, exact evaluation) in tests/test_train_step_mirrored.py.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs.base import TrainConfig  # noqa: E402
from inception_keras.training.loop import checkpoints  # noqa: E402
from inception_keras.training.step import optimizers
from inception_keras.training.step.ema import ExponentialMovingAverage  # noqa: E402
from inception_keras.training.step.loss_scale import DynamicLossScale  # noqa: E402
from inception_keras.training.step.steps import Counters, Steps, cross_entropy  # noqa: E402
from inception_keras.training.step.updates import LocalUpdate  # noqa: E402

CLASSES, BATCH = 4, 8


@pytest.fixture
def tiny_model(tiny_two_head_model):
    """tiny_model(seed) -> the shared tiny two-head model at 8x8 with CLASSES classes."""
    return lambda seed: tiny_two_head_model(classes=CLASSES, size=8, seed=seed, logits=True)


def make_steps(model, *, optimizer="sgd", lr=0.1, clipnorm=None, ema=None, loss_scale=False,
               jit_compile=False, strategy=None):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        counters = Counters()
        config = TrainConfig(optimizer=optimizer, momentum=0.9, epsilon=1e-7)
        optimizer = optimizers.make_optimizer(config, lambda: tf.constant(lr))
        optimizer.build(model.trainable_variables)
        steps = Steps(model, LocalUpdate.single(optimizer, lambda: tf.constant(lr)), strategy,
                      counters=counters, global_batch_size=BATCH,
                      num_classes=CLASSES, label_smoothing=0.1, aux_weight=0.4,
                      clipnorm=clipnorm,
                      ema=ExponentialMovingAverage(model, ema) if ema else None,
                      loss_scale=DynamicLossScale() if loss_scale else None,
                      jit_compile=jit_compile)
        steps.optimizer = optimizer
        return steps


def batches(seed=0, count=64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count * BATCH, 8, 8, 3)).astype("float32")
    y = rng.integers(0, CLASSES, count * BATCH).astype("int32")  # class ids, as the pipeline
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


def weights_of(model):
    return [w.numpy().copy() for w in model.weights]


@pytest.mark.slow
def test_multi_step_call_under_xla_matches_single_steps(tiny_model):
    """2 calls of 3 steps, the replica step compiled by XLA == 6 one-step calls without XLA:
    static shapes, no host ops, no Python side effects inside the step."""
    fused = make_steps(tiny_model(1), optimizer="rmsprop", lr=0.01, clipnorm=0.5, ema=0.9,
                       jit_compile=True)
    single = make_steps(tiny_model(1), optimizer="rmsprop", lr=0.01, clipnorm=0.5, ema=0.9)
    first, second = iter(batches()), iter(batches())
    for _ in range(2):
        fused.train(first, 3)
    losses = [single.train(second, 1)["loss"] for _ in range(6)]
    assert int(fused.counters.step.numpy()) == int(single.counters.step.numpy()) == 6
    for a, b in zip(weights_of(fused.model), weights_of(single.model)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(fused.ema.averages, single.ema.averages):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    assert losses[0] != losses[-1]  # it trained


def test_ema_follows_tensorflow_exponential_moving_average_with_warm_up(tiny_model):
    model = tiny_model(2)
    ours = ExponentialMovingAverage(model, 0.999)
    variables = [w.value for w in model.weights]
    num_updates = tf.Variable(0, dtype=tf.int64)
    reference = tf.train.ExponentialMovingAverage(0.999, num_updates=num_updates)
    reference.apply(variables)
    rng = np.random.default_rng(0)
    for step in range(1, 6):
        for v in variables:
            v.assign(v + rng.normal(size=v.shape).astype("float32"))
        num_updates.assign(step)
        reference.apply(variables)
        ours.update(tf.constant(step, tf.int64))
    for average, v in zip(ours.averages, variables):
        np.testing.assert_allclose(average.numpy(), reference.average(v).numpy(), rtol=1e-5,
                                   atol=1e-6)
    # after 5 steps the warm-up decay is (1+5)/(10+5) = 0.4, far from 0.999: the weights lead
    assert not np.allclose(ours.averages[0].numpy(), variables[0].numpy())


def test_ema_swaps_in_for_evaluation_and_back(tiny_model):
    steps = make_steps(tiny_model(3), lr=0.5, ema=0.5)
    steps.train(iter(batches()), 3)
    raw = weights_of(steps.model)
    averages = [a.numpy().copy() for a in steps.ema.averages]
    assert not all(np.allclose(a, b) for a, b in zip(raw, averages))
    with steps.ema.swapped():
        for got, want in zip(weights_of(steps.model), averages):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(weights_of(steps.model), raw):
        np.testing.assert_array_equal(got, want)


def test_mixed_float16_scales_the_loss_and_counts_skipped_steps(tiny_model, tmp_path):
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        steps = make_steps(tiny_model(4), lr=0.05, loss_scale=True)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    data = iter(batches())
    steps.train(data, 3)
    assert all(np.all(np.isfinite(w)) for w in weights_of(steps.model))
    assert int(steps.counters.skipped.numpy()) == 0
    before = weights_of(steps.model)
    steps.loss_scale.scale.assign(2.0 ** 60)  # the scaled float16 loss overflows: inf gradients
    stats = steps.train(data, 1)
    assert int(steps.counters.step.numpy()) == 4  # a skipped step is a step taken on data
    assert int(steps.counters.skipped.numpy()) == 1
    assert steps.loss_scale.scale.numpy() == 2.0 ** 59  # halved
    assert np.isfinite(stats["loss"])
    for a, b in zip(before, weights_of(steps.model)):  # no update, BN statistics aside
        if a.shape != (4,):
            np.testing.assert_array_equal(a, b)
    steps.loss_scale.scale.assign(2.0 ** 10)
    steps.train(data, 2)
    assert int(steps.counters.step.numpy()) == 6 and int(steps.counters.skipped.numpy()) == 1
    assert not np.array_equal(before[0], weights_of(steps.model)[0])
    # a resume continues at data step 6 (the skipped step counted), with the loss scale
    objects = lambda s: dict(model=s.model, optimizer=s.optimizer, counters=s.counters,  # noqa
                             loss_scale=s.loss_scale)
    manager = checkpoints.make_manager(checkpoints.make_checkpoint(**objects(steps)),
                                       str(tmp_path), 1)
    checkpoints.save_if_finite(manager, 6, steps.model, 1.0)
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        resumed = make_steps(tiny_model(9), lr=0.05, loss_scale=True)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    checkpoints.restore_latest(checkpoints.make_checkpoint(**objects(resumed)), str(tmp_path))
    assert int(resumed.counters.step.numpy()) == 6 and int(resumed.counters.skipped.numpy()) == 1
    assert resumed.loss_scale.scale.numpy() == 2.0 ** 10


def test_checkpoint_restores_weights_optimizer_counters_and_ema(tiny_model, tmp_path):
    steps = make_steps(tiny_model(5), optimizer="rmsprop", lr=0.01, ema=0.9)
    steps.train(iter(batches()), 3)
    checkpoint = checkpoints.make_checkpoint(model=steps.model, optimizer=steps.optimizer,
                                             counters=steps.counters, ema=steps.ema)
    manager = checkpoints.make_manager(checkpoint, str(tmp_path), 2)
    assert checkpoints.save_if_finite(manager, 3, steps.model, 1.0).endswith("ckpt-3")

    fresh = make_steps(tiny_model(6), optimizer="rmsprop", lr=0.01, ema=0.9)
    restored = checkpoints.restore_latest(
        checkpoints.make_checkpoint(model=fresh.model, optimizer=fresh.optimizer,
                                    counters=fresh.counters, ema=fresh.ema), str(tmp_path))
    assert restored.endswith("ckpt-3") and int(fresh.counters.step.numpy()) == 3
    pairs = list(zip(steps.model.weights, fresh.model.weights))
    pairs += list(zip(steps.optimizer.variables, fresh.optimizer.variables))
    pairs += list(zip(steps.ema.averages, fresh.ema.averages))
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_non_finite_loss_or_weights_keep_the_last_good_checkpoint(tiny_model, tmp_path):
    steps = make_steps(tiny_model(7))
    manager = checkpoints.make_manager(
        checkpoints.make_checkpoint(model=steps.model, counters=steps.counters), str(tmp_path), 5)
    good = checkpoints.save_if_finite(manager, 1, steps.model, 0.5)
    assert checkpoints.save_if_finite(manager, 2, steps.model, float("nan")) is None
    steps.model.weights[0].assign(tf.fill(steps.model.weights[0].shape, np.nan))
    assert checkpoints.save_if_finite(manager, 3, steps.model, 0.5) is None
    assert manager.latest_checkpoint == good


@pytest.mark.parametrize("examples", [37, 40])
def test_evaluation_scores_every_example_once_and_runs_no_padding_batch(tiny_model, examples):
    from inception_keras.data.pipeline import _pad_forever

    rng = np.random.default_rng(examples)
    x = rng.normal(size=(examples, 8, 8, 3)).astype("float32")
    y = rng.integers(0, CLASSES, examples).astype("int32")
    masked = _pad_forever(tf.data.Dataset.from_tensor_slices((x, y))).batch(BATCH,
                                                                           drop_remainder=True)
    steps = make_steps(tiny_model(8))
    results = steps.evaluate(masked, steps_per_call=100)  # one call is enough for all of it
    probabilities = tf.nn.softmax(steps.model.predict(x, verbose=0)["predictions"]).numpy()
    assert results["examples"] == examples
    assert results["batches"] == -(-examples // BATCH)  # 37 -> 5 batches, 40 -> 5: no padding one
    assert results["top1"] == pytest.approx(np.mean(probabilities.argmax(1) == y))
    # plain cross-entropy, no label smoothing (comparable with published numbers)
    expected = -np.mean(np.log(probabilities[np.arange(examples), y]))
    assert results["cross_entropy"] == pytest.approx(expected, rel=1e-5)
    assert results["confusion"].sum() == examples
    limited = steps.evaluate(masked, max_steps=2)
    assert limited["examples"] == 2 * BATCH and limited["batches"] == 2


def test_loss_smooths_class_ids_once_and_takes_soft_targets_as_given():
    """Our loss on logits == Keras' categorical cross-entropy on the softmax, smoothing included;
    soft targets (MixUp/CutMix, already smoothed by the pipeline) are not smoothed again."""
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(6, 5)) * 3, tf.float32)
    ids = tf.constant([0, 1, 2, 3, 4, 0])
    one_hot = tf.one_hot(ids, 5)
    keras_loss = keras.losses.categorical_crossentropy(one_hot, tf.nn.softmax(logits),
                                                       label_smoothing=0.1)
    np.testing.assert_allclose(cross_entropy(ids, logits, 0.1), keras_loss, rtol=1e-5)
    soft = 0.7 * one_hot + 0.3 * tf.roll(one_hot, 1, axis=0)
    np.testing.assert_allclose(cross_entropy(soft, logits, 0.1),
                               keras.losses.categorical_crossentropy(soft, tf.nn.softmax(logits)),
                               rtol=1e-5)


def test_train_sums_the_objective_and_the_main_heads_plain_cross_entropy(tiny_model):
    """What the step returns for TensorBoard: `loss` is the objective of the step (label smoothing
    0.1, the aux head at 0.4, per global batch); `cross_entropy` is the main head's alone, not
    smoothed, summed over the examples (as the evaluation's)."""
    steps = make_steps(tiny_model(7), lr=0.0)
    images, labels = next(iter(batches(seed=3)))
    outputs = steps.model(images, training=True)  # batch statistics: what the step computes
    plain = keras.losses.sparse_categorical_crossentropy(labels, outputs["predictions"],
                                                        from_logits=True)
    objective = (cross_entropy(labels, outputs["predictions"], 0.1)
                 + 0.4 * cross_entropy(labels, outputs["aux_predictions"], 0.1))
    stats = steps.train(iter(batches(seed=3)), 1)
    assert stats["examples"] == BATCH
    assert stats["cross_entropy"] == pytest.approx(float(np.sum(plain)), rel=1e-5)
    assert stats["loss"] == pytest.approx(float(np.sum(objective)) / BATCH, rel=1e-5)


@pytest.mark.slow
def test_xla_step_follows_freezing_and_unfreezing(tiny_model):
    """jit_compile=True: while only the head trains, every frozen weight (BN statistics too)
    stays bit-identical; after unfreezing, the conv kernel and the BN statistics move."""
    from inception_keras.training.transfer import set_trainable_from

    steps = make_steps(tiny_model(10), optimizer="rmsprop", lr=0.01, jit_compile=True)
    data = iter(batches())
    steps.train(data, 1)  # traced and compiled with every layer trainable
    set_trainable_from(steps.model, "head")
    steps.retrace()
    frozen = {w.path: w.numpy().copy() for w in steps.model.weights
              if not w.path.startswith(("predictions", "aux_predictions"))}
    head = steps.model.get_layer("predictions").kernel.numpy().copy()
    steps.train(data, 3)
    for weight in steps.model.weights:
        if weight.path in frozen:
            np.testing.assert_array_equal(weight.numpy(), frozen[weight.path], err_msg=weight.path)
    assert not np.array_equal(head, steps.model.get_layer("predictions").kernel.numpy())
    set_trainable_from(steps.model, "all")
    steps.retrace()
    steps.train(data, 3)
    moved = {w.path for w in steps.model.weights
             if w.path in frozen and not np.array_equal(w.numpy(), frozen[w.path])}
    assert {"conv/kernel", "bn/moving_mean", "bn/moving_variance"} <= moved, moved
