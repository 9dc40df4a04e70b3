"""The update the trainer's step applies (inception_keras.training.step.updates) and its schedules:
decoupled weight decay with its no-decay groups, a head of its own rate, cosine decay."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import get_config
from inception_keras.training.step import optimizers
from inception_keras.training.step.schedules import make_schedule
from inception_keras.training.step.updates import (
    LocalUpdate, ParameterGroup, head_variables, no_decay_variables)


def model_with_bn_and_biases(tiny_two_head_model):
    model = tiny_two_head_model(classes=3, size=8, seed=0, logits=True)
    model.get_layer("bn").beta.assign(tf.fill([4], 0.5))  # not zero: decay would show
    model.get_layer("predictions").bias.assign(tf.fill([3], 0.5))
    return model


def values(variables):
    return [v.numpy().copy() for v in variables]


@pytest.mark.parametrize("no_decay", [("bn", "bias"), ("none",)])
def test_decoupled_decay_shrinks_weights_but_not_the_no_decay_groups(tiny_two_head_model,
                                                                     no_decay):
    model = model_with_bn_and_biases(tiny_two_head_model)
    variables = model.trainable_variables
    optimizer = optimizers.make_optimizer(
        get_config("smoke").replace(optimizer="adamw", decoupled_weight_decay=0.1), 0.5)
    optimizer.build(variables)
    update = LocalUpdate.single(optimizer, lambda: tf.constant(0.5), variables,
                                decoupled_weight_decay=0.1,
                                no_decay=no_decay_variables(model, no_decay))
    before = values(variables)
    update.apply([tf.zeros_like(v) for v in variables], variables)  # Adam moves nothing on 0
    spared = {id(v) for v in no_decay_variables(model, ("bn", "bias"))}
    assert len(spared) == 4  # bn gamma and beta, both classifiers' biases
    for variable, old in zip(variables, before):
        shrunk = old * (1 - 0.5 * 0.1)
        if id(variable) in spared and no_decay != ("none",):
            np.testing.assert_array_equal(variable.numpy(), old)
        else:
            np.testing.assert_allclose(variable.numpy(), shrunk, rtol=1e-6)


def test_head_group_has_its_own_optimizer_at_a_multiple_of_the_rate(tiny_two_head_model):
    model = model_with_bn_and_biases(tiny_two_head_model)
    variables = model.trainable_variables
    head = head_variables(model)
    backbone = [v for v in variables if all(v is not h for h in head)]
    groups = []
    for name, rate, members in (("backbone", lambda: tf.constant(0.1), backbone),
                                ("head", lambda: tf.constant(1.0), head)):
        optimizer = keras.optimizers.SGD(rate)
        optimizer.build(members)
        groups.append(ParameterGroup(name, optimizer, rate, members))
    update = LocalUpdate(groups)
    before = values(variables)
    update.apply([tf.ones_like(v) for v in variables], variables)
    update.finish(tf.constant(True))
    for variable, old in zip(variables, before):
        step = 1.0 if any(variable is h for h in head) else 0.1
        np.testing.assert_allclose(old - variable.numpy(), step, rtol=1e-6)
    assert sorted(update.checkpoint_objects()) == ["head_optimizer", "optimizer"]
    assert [int(g.optimizer.iterations.numpy()) for g in groups] == [1, 1]


def test_cosine_schedule_warms_up_to_the_peak_and_ends_at_its_final_value():
    config = get_config("smoke").replace(lr_schedule="cosine", warmup="linear",
                                         warmup_epochs=1, lr_floor_fraction=0.1, epochs=5,
                                         base_learning_rate=0.4, lr_reference_batch_size=0)
    schedule, text = make_schedule(config, global_batch_size=32, steps_per_epoch=10)
    rates = np.array([float(schedule(step)) for step in range(51)])
    assert rates[0] == pytest.approx(0.04) and rates[10] == pytest.approx(0.4)
    assert np.all(np.diff(rates[:11]) > 0) and np.all(np.diff(rates[10:]) < 0)
    assert rates[50] == pytest.approx(0.04, rel=1e-5)  # 0.1 x peak at the last step
    assert rates[30] == pytest.approx(0.04 + 0.36 * 0.5, rel=1e-4)  # half way: the mean
    assert "cosine to 0.1 x peak at step 50" in text and "linear warm-up 10 steps" in text
