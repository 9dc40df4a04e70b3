"""Dynamic loss scaling for float16 training, owned by the trainer's step.

The step multiplies the loss by `scale` before differentiating, all-reduces the gradients,
divides them by `scale` and checks them. A step whose gradients hold an inf or NaN is skipped
(no optimizer update) and halves the scale; after `growth_steps` finite steps in a row the scale
doubles. The same rule as `keras.optimizers.LossScaleOptimizer` (initial scale 2^15, growth
every 2000 steps), kept here because the unscaled gradient must be clipped after the
cross-replica sum, which that wrapper cannot do.
"""

import tensorflow as tf


def _replicated(value, dtype, name):
    return tf.Variable(value, dtype=dtype, trainable=False, name=name,
                       synchronization=tf.VariableSynchronization.ON_WRITE,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class DynamicLossScale(tf.Module):
    """Loss-scale state (create inside the strategy scope); checkpointed with the run."""

    def __init__(self, initial_scale=2.0 ** 15, growth_steps=2000):
        super().__init__(name="loss_scale")
        self.growth_steps = int(growth_steps)
        self.scale = _replicated(initial_scale, tf.float32, "scale")
        self.good_steps = _replicated(0, tf.int64, "good_steps")

    def update(self, finite):
        """After a step (cross-replica context): grow after enough finite steps, halve on inf."""
        def grow_or_count():
            grow = self.good_steps >= self.growth_steps - 1
            self.scale.assign(tf.where(grow, self.scale * 2.0, self.scale))
            self.good_steps.assign(tf.where(grow, tf.constant(0, tf.int64), self.good_steps + 1))

        def shrink():
            self.scale.assign(tf.maximum(self.scale * 0.5, 1.0))
            self.good_steps.assign(0)

        tf.cond(finite, grow_or_count, shrink)
