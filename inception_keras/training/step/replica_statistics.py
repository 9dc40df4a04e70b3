"""Batch-norm moving statistics that every replica agrees on before anything reads them.

In training mode each replica normalises with the moments of its own part of the batch and
updates its own copy of the moving mean and variance (Keras' BatchNormalization variables have
no cross-replica aggregation), so the copies drift apart; a checkpoint, `get_weights()` and an
export would keep replica 0's, and a validation would run each replica with its own.
`ReplicaStatistics()` replaces every copy by the mean over replicas (one all-reduce of all the
statistics together), as TF-1's on-read variables and timm's `distribute_bn` do. The trainer
calls it before each evaluation and each checkpoint: not per step, so the step keeps its single
all-reduce. The EMA averages of those statistics are averaged the same way (the EMA update is
linear, so averaging when read equals averaging every step).

With `sync_batch_norm` the forward pass uses the moments of the global batch instead (Keras'
`BatchNormalization(synchronized=True)`: one all-reduce per layer per step), for small batches
per replica; the copies then stay equal up to rounding, and this still averages them.
"""

import keras
import tensorflow as tf

from inception_keras.models.inception_v3 import all_layers


def batch_norm_statistics(model):
    """The moving mean and variance variables of every BatchNormalization layer of `model`."""
    statistics = []
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            statistics += [layer.moving_mean, layer.moving_variance]
    return statistics


class ReplicaStatistics:
    """`agree()`: every replica's copy of `variables` := their mean over replicas."""

    def __init__(self, strategy, variables):
        self.strategy = strategy
        self.variables = [v.value if isinstance(v, keras.Variable) else v  # tf variables
                          for v in variables]
        several = strategy.num_replicas_in_sync > 1 and self.variables
        self._agree = tf.function(self._agree_fn) if several else None

    def _agree_fn(self):
        def replica_fn():
            local = [tf.identity(v) for v in self.variables]  # this replica's copies
            means = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.MEAN, local)
            for variable, mean in zip(self.variables, means):
                variable.assign(mean)  # no aggregation: this replica's copy

        self.strategy.run(replica_fn)

    def agree(self):
        if self._agree is not None:
            self._agree()
