"""An exponential moving average of the model's weights, kept beside the raw weights.

As TensorFlow's `tf.train.ExponentialMovingAverage(decay, num_updates=step)`:

    decay_t = min(decay, (1 + t) / (10 + t))          t = training steps taken, this one included
    average = decay_t * average + (1 - decay_t) * weight

so the average follows the weights closely early in training and settles at `decay` after
about 10 / (1 - decay) steps (Keras' optimizer `use_ema` has no such warm-up: its average of a
0.9999 run still weighs the initial weights after epochs). Like the Cloud TPU reference, the
average covers the trainable weights and the batch-norm moving statistics (every float weight
of the model).

The averages are `tf.Variable`s created in the strategy scope and synchronised on read: every
replica holds the same weights after a step, so each updates its own copy with no cross-replica
traffic. `swapped()` exchanges averages and weights for evaluation and export, and back again.
"""

import contextlib

import tensorflow as tf


def _float_weights(model):
    return [w for w in model.weights if w.dtype in ("float32", "float16", "bfloat16", "float64")]


def _tf_variable(weight):
    return getattr(weight, "value", weight)  # keras.Variable -> its backing tf.Variable


def warmed_up_decay(decay, step):
    """TF's `min(decay, (1 + step) / (10 + step))` for a step count tensor."""
    step = tf.cast(step, tf.float32)
    return tf.minimum(tf.constant(decay, tf.float32), (1.0 + step) / (10.0 + step))


class ExponentialMovingAverage(tf.Module):
    """Averages of `model`'s float weights (create inside the strategy scope)."""

    def __init__(self, model, decay):
        super().__init__(name="ema")
        self.decay = float(decay)
        self._weights = [_tf_variable(w) for w in _float_weights(model)]
        self.averages = [
            tf.Variable(w.read_value(), trainable=False, name=w.name.split(":")[0] + "_ema",
                        synchronization=tf.VariableSynchronization.ON_READ,
                        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            for w in self._weights]

    def update(self, step):
        """One averaging step; `step` counts the training steps taken, this one included."""
        rate = 1.0 - warmed_up_decay(self.decay, step)
        for average, weight in zip(self.averages, self._weights):
            # TF's form, average -= (1 - decay)(average - weight): fewer ops per weight
            average.assign_sub(rate * (average - tf.cast(weight, tf.float32)))

    def averages_of(self, weights):
        """The averages of `weights` (Keras or tf variables of the model), in their order."""
        index = {id(w): average for w, average in zip(self._weights, self.averages)}
        return [index[id(_tf_variable(w))] for w in weights]

    def reset(self):
        """Averages := the current weights (after loading initial weights into the model)."""
        for average, weight in zip(self.averages, self._weights):
            average.assign(weight.read_value())

    def _exchange(self):
        for average, weight in zip(self.averages, self._weights):
            raw = tf.identity(weight.read_value())
            weight.assign(average.read_value())
            average.assign(raw)

    @contextlib.contextmanager
    def swapped(self):
        """Within the block the model holds the averages; the raw weights come back after."""
        self._exchange()
        try:
            yield
        finally:
            self._exchange()


@contextlib.contextmanager
def ema_weights(ema):
    """`ema.swapped()`, or nothing when the run has no EMA (`ema` is None)."""
    if ema is None:
        yield
        return
    with ema.swapped():
        yield
