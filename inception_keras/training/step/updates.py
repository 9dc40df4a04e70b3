"""The weight update of a step, applied by every replica to its own copy: no communication.

The step all-reduces the gradient once; every replica then holds the same global-batch
gradient, so every replica applying the same update to its own copy of the weights and of the
optimizer's slots keeps them identical, with no further traffic. `LocalUpdate.apply` (replica
context) runs, for each variable:

1. decoupled weight decay, `w -= lr * decoupled_weight_decay * w` (Loshchilov & Hutter's AdamW /
   SGDW, in the order and form of Keras' AdamW), except on the variables of the `no_decay`
   groups (BatchNormalization parameters, biases);
2. the optimizer's own per-variable math, Keras' public `update_step(gradient, variable,
   learning_rate)`.

`finish` (cross-replica context, once per step) counts the step in each optimizer's
`iterations`, which Adam's bias correction reads.

Parameter groups: with `head_lr_multiplier` != 1 the classifiers (`predictions`,
`aux_predictions`) have an optimizer of their own at that multiple of the rate (scaling their
gradient instead would do nothing under Adam or RMSprop, which normalise it). The checkpoint
then holds `optimizer` (every other trainable variable's slots) and `head_optimizer`; with one
group, `optimizer` alone, as before.

Why not `optimizer.apply`: in a replica context Keras all-reduces the gradients again (a
second full-gradient all-reduce per step), and from the cross-replica context it cannot run on
`MirroredStrategy` without XLA on GPUs (its `maybe_merge_call` needs a replica context there).
The update math, the slots and their checkpoint layout are Keras' own.
"""

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS
from inception_keras.models.inception_v3 import all_layers

HEAD_LAYERS = (PREDICTIONS, AUX_PREDICTIONS)


@dataclasses.dataclass
class ParameterGroup:
    """An optimizer, its learning rate (a callable: this step's rate) and its variables."""

    name: str
    optimizer: keras.optimizers.Optimizer
    learning_rate: Callable
    variables: list


def head_variables(model):
    """The trainable variables of the classifier layers."""
    return [v for layer in all_layers(model) if layer.name in HEAD_LAYERS
            for v in layer.trainable_weights]


def no_decay_variables(model, groups):
    """The variables of `groups` ("bn": BatchNormalization parameters, "bias": biases)."""
    chosen = []
    for layer in all_layers(model):
        if "bn" in groups and isinstance(layer, keras.layers.BatchNormalization):
            chosen += layer.trainable_weights
        elif "bias" in groups:
            chosen += [w for w in layer.trainable_weights if w.name == "bias"]
    return chosen


class LocalUpdate:
    """Applies the all-reduced gradient with each variable's group's optimizer and rate."""

    def __init__(self, groups, *, decoupled_weight_decay=0.0, no_decay=()):
        self.groups = list(groups)
        self.decay = float(decoupled_weight_decay)
        self._group = {id(v.value): group for group in self.groups for v in group.variables}
        self._no_decay = {id(v.value) for v in no_decay}

    @classmethod
    def single(cls, optimizer, learning_rate, variables=(), **decay):
        return cls([ParameterGroup("all", optimizer, learning_rate, list(variables))], **decay)

    def _group_of(self, variable):
        return self._group.get(id(variable.value), self.groups[0])

    def apply(self, grads, variables):
        """Updates `variables` (Keras variables) with `grads` (replica context)."""
        rates = {}
        for grad, variable in zip(grads, variables):
            if grad is None:
                continue
            group = self._group_of(variable)
            if group.name not in rates:
                rates[group.name] = group.learning_rate()
            rate = rates[group.name]
            if self.decay and id(variable.value) not in self._no_decay:
                variable.assign_sub(variable * tf.cast(self.decay * rate, variable.dtype))
            group.optimizer.update_step(grad, variable.value, rate)

    def finish(self, applied):
        """After each step (cross-replica context): +1 iteration if the update was applied."""
        for group in self.groups:
            iterations = group.optimizer.iterations
            iterations.assign_add(tf.cast(applied, iterations.dtype))

    def checkpoint_objects(self):
        """{'optimizer': ..., ['head_optimizer': ...]} for the run's checkpoint."""
        return {("optimizer" if group.name in ("all", "backbone") else f"{group.name}_optimizer"):
                group.optimizer for group in self.groups}
