"""A resumed Trainer continues with everything its checkpoint saved, not only the step number:
the weights, the optimizer's slots and iterations, the EMA averages (and, under float16, the
loss scale); its next step is the step an uninterrupted Trainer takes. The AdamW the trainer
builds applies the config's decoupled weight decay, by default Keras' AdamW's.

Single device, AdamW, EMA, Inception at depth 0.125 and 75x75 on one fixed batch; dropout 0 so
that two trainers' steps are comparable.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

pytestmark = pytest.mark.slow  # each test builds Inception twice

BATCH, SIZE = 4, 75


@pytest.fixture
def restore_dtype_policy():
    policy = keras.mixed_precision.dtype_policy()
    yield
    keras.mixed_precision.set_dtype_policy(policy)


def make_trainer(tmp_path, seed, **changes):
    from configs import get_config
    from inception_keras.training.setup import setup_run
    from inception_keras.training.trainer import Trainer

    config = get_config("smoke").replace(**{
        **dict(dataset="synthetic", model_dir=str(tmp_path / "run"), strategy="cpu",
               precision="float32", image_size=SIZE, depth_multiplier=0.125,
               global_batch_size=BATCH, steps_per_epoch=10, dropout_rate=0.0,
               optimizer="adamw",  # decoupled_weight_decay unset: adamw's default
               ema_momentum=0.9),
        **changes}).validate()
    keras.utils.set_random_seed(seed)
    return Trainer(setup_run(config))


def save(trainer, step):
    from inception_keras.training.loop import checkpoints
    from inception_keras.training.loop.actions import Checkpointer

    manager = checkpoints.make_manager(trainer.checkpoint, trainer.checkpoint_dir, 1)
    return Checkpointer(trainer, manager).save(step, 1.0)


def state_of(trainer):
    """{name: value} of everything a resume must bring back."""
    state = {f"weight {i} {w.path}": w.numpy().copy() for i, w in enumerate(trainer.model.weights)}
    state.update({f"optimizer {i}": v.numpy().copy()  # its paths are numbered per optimizer
                  for i, v in enumerate(trainer.optimizer.variables)})
    state.update({f"ema {i}": a.numpy().copy() for i, a in enumerate(trainer.ema.averages)})
    state["step"] = trainer.counters.step.numpy()
    if trainer.loss_scale is not None:
        state["loss scale"] = trainer.loss_scale.scale.numpy()
        state["good steps"] = trainer.loss_scale.good_steps.numpy()
    return state


def different(a, b):
    return sorted(key for key in a if not np.array_equal(a[key], b[key]))


def test_resumed_trainer_continues_with_the_saved_slots_and_ema(tmp_path, restore_dtype_policy):
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(BATCH, SIZE, SIZE, 3)).astype("float32"),
             np.arange(BATCH, dtype="int32"))

    def data():
        return iter(tf.data.Dataset.from_tensors(batch).repeat())

    uninterrupted = make_trainer(tmp_path, 0)
    iterator = data()
    uninterrupted.train(iterator, 3)
    save(uninterrupted, 3)
    saved = state_of(uninterrupted)
    uninterrupted.train(iterator, 1)
    next_step = state_of(uninterrupted)

    resumed = make_trainer(tmp_path, 1)
    fresh = state_of(resumed)
    assert resumed.restore().endswith("ckpt-3")
    # what a checkpoint without the optimizer or the EMA would leave fresh differs
    assert any(key.startswith("optimizer") for key in different(saved, fresh))
    assert any(key.startswith("ema") for key in different(saved, fresh))
    assert different(state_of(resumed), saved) == []
    resumed.train(data(), 1)
    after = state_of(resumed)
    assert after["step"] == 4
    assert any(key.startswith("optimizer") for key in different(next_step, saved))
    for key in next_step:
        np.testing.assert_allclose(after[key], next_step[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def test_float16_checkpoint_keeps_the_loss_scale_and_adamw_decays_by_default(
        tmp_path, restore_dtype_policy):
    from configs.base import ADAMW_DEFAULT_DECAY

    saving = make_trainer(tmp_path, 0, precision="mixed_float16")
    saving.loss_scale.scale.assign(2.0 ** 7)  # as after 8 overflowing steps
    saving.loss_scale.good_steps.assign(5)
    save(saving, 1)

    resumed = make_trainer(tmp_path, 1, precision="mixed_float16")
    # the trainer's AdamW decays every weight but BN parameters and biases by lr x decay (unset:
    # ADAMW_DEFAULT_DECAY); a zero gradient on fresh slots moves nothing else
    variables = resumed.model.trainable_variables
    bias = resumed.model.get_layer("predictions").bias
    bias.assign(tf.fill(bias.shape, 0.5))  # not 0: a decay would show
    before = {id(v): v.numpy().copy() for v in variables}
    resumed.update.apply([tf.zeros_like(v) for v in variables], variables)
    kernel = resumed.model.get_layer("predictions").kernel
    shrink = 1 - float(resumed.learning_rate()) * ADAMW_DEFAULT_DECAY  # 1 - 8e-6 (eps 6e-8)
    np.testing.assert_allclose(kernel.numpy(), before[id(kernel)] * shrink, rtol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), before[id(bias)])

    assert resumed.loss_scale.scale.numpy() == 2.0 ** 15
    resumed.restore()
    assert resumed.loss_scale.scale.numpy() == 2.0 ** 7
    assert resumed.loss_scale.good_steps.numpy() == 5

