"""Schedule, optimizer, weight decay, EMA swap, checkpoints and the NaN guard, on tiny models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs import get_config  # noqa: E402
from configs.base import TrainConfig  # noqa: E402
from inception_keras import build_inception_v3  # noqa: E402
from inception_keras.training.cluster import distribute  # noqa: E402
from inception_keras.training.loop import checkpoints  # noqa: E402
from inception_keras.training.step import optimizers
from inception_keras.training.step import regularization, schedules  # noqa: E402
from inception_keras.training.loop.progress import image_grid  # noqa: E402


# ------------------------------------------------------------------------------------ schedules

def test_schedule_warmup_then_staircase_decay():
    schedule = schedules.InceptionSchedule(1.0, decay_steps=10, decay_rate=0.5,
                                           warmup="linear", warmup_steps=4)
    lr = [float(schedule(s)) for s in (0, 1, 3, 4, 9, 10, 19, 20)]
    # The warm-up scales the schedule; the decay counts from step 0 regardless.
    np.testing.assert_allclose(lr, [0.25, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25], rtol=1e-6)


def test_tpu_recipe_lr_scales_with_batch():
    config = get_config("tpu")
    schedule, text = schedules.make_schedule(config, global_batch_size=1024, steps_per_epoch=1251,
                                             num_train_examples=1281167)
    assert schedule.peak_learning_rate == pytest.approx(0.66)
    assert schedule.warmup == "none" and schedule.decay_steps == int(3 * 1281167 / 1024)
    assert "0.165 x 1024/256" in text
    assert float(schedule(schedule.decay_steps)) == pytest.approx(0.66 * 0.94, rel=1e-5)


# ------------------------------------------------------------------------------------ optimizer

def test_paper_rmsprop_is_not_keras_default():
    optimizer = optimizers.make_optimizer(get_config("paper"), 0.045)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert (optimizer.rho, optimizer.momentum, optimizer.epsilon) == (0.9, 0.9, 1.0)
    assert optimizer.initial_mean_square == 1.0  # TF-1's RMSProp, not Keras' 0


@pytest.mark.parametrize("kind, cpu_bf16, expected", [
    ("tpu", False, "mixed_bfloat16"),
    ("gpu", False, "mixed_float16"),
    ("gpu", True, "mixed_float16"),
    ("cpu", True, "mixed_bfloat16"),
    ("cpu", False, "float32"),
])
def test_precision_auto_on_tpu_gpu_and_cpu(monkeypatch, kind, cpu_bf16, expected):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert distribute.strategy_kind(strategy) == "cpu"
    # The device facts are injected: this machine has one kind of device only.
    seen = []
    monkeypatch.setattr(distribute, "strategy_kind", lambda s: seen.append(s) or kind)
    monkeypatch.setattr(distribute, "cpu_supports_bfloat16", lambda: cpu_bf16)
    assert distribute.resolve_precision("auto", strategy) == expected
    assert seen == [strategy]
    for explicit in ("float32", "mixed_float16", "mixed_bfloat16"):
        assert distribute.resolve_precision(explicit, strategy) == explicit


# --------------------------------------------------------------------------------- weight decay

def test_weight_decay_is_slim_l2_on_conv_and_dense_kernels_only():
    model = build_inception_v3(input_shape=(75, 75, 3), classes=3, depth_multiplier=0.125)
    count = regularization.add_kernel_weight_decay(model, 4e-5)
    kernels = [layer.kernel for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert count == len(kernels) > 90
    regularized = [v for v in model.trainable_variables if v.regularizer is not None]
    assert {id(v) for v in regularized} == {id(k) for k in kernels}  # no BN beta, no biases
    expected = 4e-5 * sum(float(np.sum(np.square(k.numpy()))) for k in kernels) / 2
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)


# --------------------------------------------------------------------------------- checkpoints

def test_resume_conflicts_and_harmless_changes():
    saved = get_config("smoke").replace(global_batch_size=32, steps_per_epoch=10,
                                        precision="float32", model_dir="runs/x").to_dict()
    harmless = TrainConfig.from_dict(saved).replace(epochs=50, data_dir="/elsewhere",
                                                    log_every_steps=7)
    checkpoints.check_resume_compatible(saved, harmless)
    conflict = TrainConfig.from_dict(saved).replace(image_size=128)
    with pytest.raises(checkpoints.ResumeConflict, match="image_size 96 -> 128.*--set image_size=96"):
        checkpoints.check_resume_compatible(saved, conflict)
    with pytest.raises(checkpoints.ResumeConflict, match="ema_momentum"):
        checkpoints.check_resume_compatible(saved, TrainConfig.from_dict(saved).replace(
            ema_momentum=0.99))
    # the paper's model switches change the network the checkpoint holds
    for key, value in (("stem", "7x7"), ("aux_batch_norm", False), ("receptive_field", 151)):
        with pytest.raises(checkpoints.ResumeConflict, match=f"{key} .* -> {value!r}"):
            checkpoints.check_resume_compatible(saved, TrainConfig.from_dict(saved).replace(
                **{key: value}))


def test_image_grid_shape_and_range():
    images = np.linspace(-1, 1, 16 * 5 * 6 * 3, dtype="float32").reshape(16, 5, 6, 3)
    grid = image_grid(images)
    assert grid.shape == (1, 20, 24, 3)
    assert grid.min() >= 0.0 and grid.max() <= 1.0


# ----------------------------------------------------------------------------- fused batch norm

def small_bn_net():
    keras.utils.set_random_seed(4)
    image = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="c1")(image)
    x = keras.layers.BatchNormalization(scale=False, momentum=0.5, name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, use_bias=False, name="c2")(x)
    x = keras.layers.BatchNormalization(momentum=0.5, name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(image, keras.layers.Dense(3, dtype="float32", name="out")(x))


@pytest.mark.parametrize("policy, tolerance", [("float32", 1e-4), ("mixed_bfloat16", 3e-2)])
def test_fused_batch_norm_matches_keras_batch_norm(policy, tolerance):
    from inception_keras.training.step.fused_batch_norm import with_fused_batch_norm

    keras.mixed_precision.set_dtype_policy(policy)
    try:
        plain = small_bn_net()
        fused = with_fused_batch_norm(plain)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    fused.set_weights(plain.get_weights())
    x = tf.random.stateless_normal((8, 12, 12, 3), seed=(1, 2)) * 2.0 + 0.5
    for training in (True, False):
        with tf.GradientTape(persistent=True) as tape:
            a, b = plain(x, training=training), fused(x, training=training)
            loss_a, loss_b = tf.reduce_sum(a * a), tf.reduce_sum(b * b)
        scale = float(tf.reduce_max(tf.abs(a)))
        np.testing.assert_allclose(a, b, atol=tolerance * scale)
        for ga, gb in zip(tape.gradient(loss_a, plain.trainable_variables),
                          tape.gradient(loss_b, fused.trainable_variables)):
            np.testing.assert_allclose(ga, gb, atol=tolerance * float(tf.reduce_max(tf.abs(ga))))
    for wa, wb in zip(plain.non_trainable_weights, fused.non_trainable_weights):  # moving stats
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.slow
def test_fused_batch_norm_inception_has_the_same_weights_and_inference():
    from inception_keras.training.step.fused_batch_norm import (FusedBatchNormalization,
                                                           with_fused_batch_norm)

    plain = build_inception_v3(input_shape=(75, 75, 3), classes=3, depth_multiplier=0.125)
    fused = with_fused_batch_norm(plain)
    assert sum(isinstance(layer, FusedBatchNormalization) for layer in fused.layers) == sum(
        isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers) > 90
    assert [v.path for v in fused.weights] == [v.path for v in plain.weights]
    fused.set_weights(plain.get_weights())
    x = tf.random.stateless_uniform((2, 75, 75, 3), seed=(1, 2), minval=-1, maxval=1)
    np.testing.assert_allclose(plain(x)["predictions"], fused(x)["predictions"], atol=1e-5)


@pytest.mark.parametrize("policy, dtype", [("mixed_bfloat16", tf.bfloat16),
                                           ("mixed_float16", tf.float16),
                                           ("float32", tf.float32)])
def test_the_trainers_input_crosses_to_the_device_in_the_compute_dtype(policy, dtype):
    """Images leave the pipeline in the policy's compute dtype (cast after augmentation: half
    the host-to-device bytes under mixed precision); labels are class ids, or soft targets when
    MixUp mixes them (smoothed there, once)."""
    from inception_keras.data import dataset_info
    from inception_keras.training import inputs

    config = get_config("smoke").replace(dataset="synthetic", image_size=32, global_batch_size=4,
                                         augment="randaugment", random_erasing=0.5)
    info = dataset_info("synthetic")
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        train = inputs.input_fn(config, info, split="train", is_training=True)(None)
        evaluation = inputs.input_fn(config, info, split="validation", is_training=False)(None)
        mixed = inputs.input_fn(config.replace(mixup_alpha=0.2), info, split="train",
                                is_training=True)(None)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    images, labels = train.element_spec
    assert images.dtype == dtype and labels.dtype == tf.int32 and labels.shape.rank == 1
    assert evaluation.element_spec[0].dtype == dtype and evaluation.element_spec[1].dtype == tf.int32
    assert mixed.element_spec[1].dtype == tf.float32 and mixed.element_spec[1].shape.rank == 2


@pytest.mark.parametrize("proposals, agreed", [
    ([[0, 7], [0, 3], [0, 5]], (False, 3)),  # the fewest steps: the slowest worker's bound
    ([[0, 2], [1, 9]], (True, 2)),  # one worker's SIGTERM stops every worker
    ([[1, 4], [0, 4]], (True, 4)),
    ([[0, 6]], (False, 6)),
])
def test_workers_agree_on_any_sigterm_and_the_fewest_steps(proposals, agreed):
    from inception_keras.training.loop.preemption import combine_proposals

    assert combine_proposals(np.array(proposals)) == agreed


def test_fault_nan_batches_turns_exactly_those_batches_of_the_stream_to_nan():
    from inception_keras.training.inputs import with_nan_batches

    def fn(input_context=None):
        return tf.data.Dataset.from_tensors((tf.ones([2, 3], tf.bfloat16), tf.constant([1, 2])))\
            .repeat()

    batches = list(with_nan_batches(fn, "2,4")().take(5))
    nan = [bool(tf.reduce_all(tf.math.is_nan(tf.cast(images, tf.float32)))) for images, _ in batches]
    assert nan == [False, True, False, True, False]
    assert all((labels.numpy() == [1, 2]).all() for _, labels in batches)  # labels untouched
    assert float(tf.reduce_sum(tf.cast(batches[0][0], tf.float32))) == 6.0
