"""Schedule, optimizer, weight decay, EMA swap, checkpoints and the NaN guard, on tiny models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs import get_config  # noqa: E402
from configs.base import TrainConfig  # noqa: E402
from inception_keras import build_inception_v3, distribute  # noqa: E402
from inception_keras.training import checkpoints, ema, losses, optimizers  # noqa: E402
from inception_keras.training import regularization, schedules  # noqa: E402
from inception_keras.training.callbacks import image_grid  # noqa: E402


def tiny_two_head_model(classes=4, seed=0):
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    main = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    aux = keras.layers.Dense(classes, activation="softmax", name="aux_predictions")(x)
    return keras.Model(image, {"predictions": main, "aux_predictions": aux})


def compile_like_trainer(model, config, steps_per_epoch=10, classes=4):
    schedule, _ = schedules.make_schedule(config, global_batch_size=8,
                                          steps_per_epoch=steps_per_epoch)
    optimizer = optimizers.make_optimizer(config, schedule)
    loss, weights = losses.make_losses(include_aux=True, label_smoothing=config.label_smoothing,
                                       aux_weight=config.aux_loss_weight)
    model.compile(optimizer=optimizer, loss=loss, loss_weights=weights,
                  metrics=losses.make_metrics(include_aux=True, num_classes=classes))
    optimizer.build(model.trainable_variables)
    return model


def batch(classes=4, n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 3)).astype("float32")
    y = np.eye(classes, dtype="float32")[np.arange(n) % classes]
    return x, {"predictions": y, "aux_predictions": y}


# ------------------------------------------------------------------------------------ schedules

def test_schedule_warmup_then_staircase_decay():
    schedule = schedules.WarmupExponentialDecay(1.0, warmup_steps=4, decay_steps=10,
                                                decay_rate=0.5)
    lr = [float(schedule(s)) for s in (0, 1, 3, 4, 13, 14, 24)]
    np.testing.assert_allclose(lr, [0.25, 0.5, 1.0, 1.0, 1.0, 0.5, 0.25], rtol=1e-6)


def test_tpu_recipe_lr_scales_with_batch():
    config = get_config("tpu")
    schedule, text = schedules.make_schedule(config, global_batch_size=1024, steps_per_epoch=1251)
    assert schedule.peak_learning_rate == pytest.approx(0.66)
    assert schedule.warmup_steps == 7 * 1251 and schedule.decay_steps == 3 * 1251
    assert "0.165 x 1024/256" in text
    after_warmup = schedule.warmup_steps + 3 * 1251
    assert float(schedule(after_warmup)) == pytest.approx(0.66 * 0.94, rel=1e-5)


# ------------------------------------------------------------------------------------ optimizer

def test_paper_rmsprop_is_not_keras_default():
    optimizer = optimizers.make_optimizer(get_config("paper"), 0.045)
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert (optimizer.rho, optimizer.momentum, optimizer.epsilon) == (0.9, 0.9, 1.0)
    assert optimizer.global_clipnorm == 2.0
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9999


def test_mixed_float16_wraps_loss_scaling():
    optimizer = optimizers.make_optimizer(get_config("gpu"), 0.1, policy="mixed_float16")
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizers.base_optimizer(optimizer), keras.optimizers.RMSprop)


def test_precision_auto_on_this_cpu():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    expected = "mixed_bfloat16" if distribute.cpu_supports_bfloat16() else "float32"
    assert distribute.resolve_precision("auto", strategy) == expected
    assert distribute.resolve_precision("float32", strategy) == "float32"


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


# ---------------------------------------------------------------------------------------- EMA

def test_ema_weights_swap_in_and_back():
    config = TrainConfig(optimizer="sgd", base_learning_rate=0.5, ema_momentum=0.9,
                         global_clipnorm=None, decay_epochs=100)
    model = compile_like_trainer(tiny_two_head_model(), config)
    x, y = batch()
    for _ in range(3):  # train_on_batch: fit() would end by copying the averages into the model
        model.train_on_batch(x, y)
    raw = [v.numpy().copy() for v in model.trainable_variables]
    averages = [v.numpy().copy() for v in model.optimizer._model_variables_moving_average]
    assert not all(np.allclose(a, b) for a, b in zip(raw, averages))
    with ema.ema_weights(model):
        inside = [v.numpy().copy() for v in model.trainable_variables]
    for got, want in zip(inside, averages):
        np.testing.assert_allclose(got, want, atol=1e-6)  # swapped by add/subtract
    for got, want in zip(model.trainable_variables, raw):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


# --------------------------------------------------------------------------------- checkpoints

def test_checkpoint_restores_weights_optimizer_step_and_ema(tmp_path):
    config = TrainConfig(optimizer="rmsprop", base_learning_rate=0.01, ema_momentum=0.9)
    model = compile_like_trainer(tiny_two_head_model(seed=1), config)
    x, y = batch()
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    manager = checkpoints.make_manager(checkpoints.make_checkpoint(model), str(tmp_path), 2)
    manager.save(checkpoint_number=3)

    fresh = compile_like_trainer(tiny_two_head_model(seed=2), config)
    path = checkpoints.restore_latest(checkpoints.make_checkpoint(fresh), str(tmp_path))
    assert path.endswith("ckpt-3")
    assert optimizers.global_step(fresh.optimizer) == 3
    pairs = list(zip(model.trainable_variables, fresh.trainable_variables))
    pairs += list(zip(model.optimizer.variables, fresh.optimizer.variables))
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_restore_falls_back_when_newest_checkpoint_is_corrupt(tmp_path):
    config = TrainConfig(optimizer="adam", base_learning_rate=0.01)
    model = compile_like_trainer(tiny_two_head_model(), config)
    manager = checkpoints.make_manager(checkpoints.make_checkpoint(model), str(tmp_path), 3)
    x, y = batch()
    for step in (1, 2):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        manager.save(checkpoint_number=step)
    data = next(p for p in tmp_path.iterdir() if p.name.startswith("ckpt-2.data"))
    data.write_bytes(b"truncated")
    fresh = compile_like_trainer(tiny_two_head_model(seed=3), config)
    path = checkpoints.restore_latest(checkpoints.make_checkpoint(fresh), str(tmp_path))
    assert path.endswith("ckpt-1") and optimizers.global_step(fresh.optimizer) == 1


def test_nan_keeps_last_good_checkpoint(tmp_path):
    config = TrainConfig(optimizer="sgd", base_learning_rate=0.01, global_clipnorm=None)
    model = compile_like_trainer(tiny_two_head_model(), config)
    manager = checkpoints.make_manager(checkpoints.make_checkpoint(model), str(tmp_path), 5)
    messages = []
    saver = checkpoints.CheckpointCallback(manager, every_steps=1, print_fn=messages.append)
    x, y = batch()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[saver])
    good = manager.latest_checkpoint
    assert good.endswith("ckpt-2")
    bad_x = x.copy()
    bad_x[0, 0, 0, 0] = np.nan
    model.fit(bad_x, y, epochs=2, batch_size=8, verbose=0,
              callbacks=[keras.callbacks.TerminateOnNaN(), saver])
    assert manager.latest_checkpoint == good
    assert saver.skipped >= 1 and "non-finite" in messages[0]
    reader = tf.train.load_checkpoint(good)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name


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
    from inception_keras.training.fused_batch_norm import with_fused_batch_norm

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


def test_fused_batch_norm_inception_has_the_same_weights_and_inference():
    from inception_keras.training.fused_batch_norm import (FusedBatchNormalization,
                                                           with_fused_batch_norm)

    plain = build_inception_v3(input_shape=(75, 75, 3), classes=3, depth_multiplier=0.125)
    fused = with_fused_batch_norm(plain)
    assert sum(isinstance(layer, FusedBatchNormalization) for layer in fused.layers) == sum(
        isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers) > 90
    assert [v.path for v in fused.weights] == [v.path for v in plain.weights]
    fused.set_weights(plain.get_weights())
    x = tf.random.stateless_uniform((2, 75, 75, 3), seed=(1, 2), minval=-1, maxval=1)
    np.testing.assert_allclose(plain(x)["predictions"], fused(x)["predictions"], atol=1e-5)
