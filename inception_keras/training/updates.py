"""The weight update of a step, applied by every replica to its own copy: no communication.

The step all-reduces the gradient once; every replica then holds the same global-batch
gradient, so every replica applying the same update to its own copy of the weights and of the
optimizer's slots keeps them identical, with no further traffic. `LocalUpdate.apply` (replica
context) runs the optimizer's own per-variable math, Keras' public `update_step(gradient,
variable, learning_rate)`, on each variable; `finish` (cross-replica context, once per step)
counts the step in `optimizer.iterations`, which Adam's bias correction reads.

Why not `optimizer.apply`: in a replica context Keras all-reduces the gradients again (a
second full-gradient all-reduce per step), and from the cross-replica context it cannot run on
`MirroredStrategy` without XLA on GPUs (its `maybe_merge_call` needs a replica context there).
The update math, the slots and their checkpoint layout are Keras' own.
"""

import tensorflow as tf


class LocalUpdate:
    """`optimizer`'s update at `learning_rate()` (a callable: the trainer's schedule)."""

    def __init__(self, optimizer, learning_rate):
        self.optimizer, self.learning_rate = optimizer, learning_rate

    def apply(self, grads, variables):
        """Updates `variables` (Keras variables) with `grads` (replica context)."""
        learning_rate = self.learning_rate()
        for grad, variable in zip(grads, variables):
            if grad is not None:
                self.optimizer.update_step(grad, variable.value, learning_rate)

    def finish(self, applied):
        """After each step (cross-replica context): +1 iteration if the update was applied."""
        self.optimizer.iterations.assign_add(tf.cast(applied, self.optimizer.iterations.dtype))
