"""Workarounds for Keras 3 `fit`/`evaluate` under `MultiWorkerMirroredStrategy` (2+ workers).

Keras 3.15 cannot `fit` with more than one worker (keras-team/keras#20585,
tensorflow/tensorflow#72388), for two reasons, both worked around here for one model:

1. A model created in a strategy scope is built "symbolically" at the start of every
   fit/evaluate by pulling one batch from the distributed iterator and `strategy.reduce`-ing it
   to learn shapes; with several workers that reduce fails on an (images, labels) batch
   ("Attempt to convert a value (PerReplica...)"). Only shapes and dtypes are needed, so the
   model, losses and metrics are built here from tensor specs, once, and the per-call step is
   turned off for this model.
2. Step outputs are reduced with `strategy.reduce("MEAN", v, axis=0)` (hard-coded for
   multi-worker), which fails on scalar metric results ("Invalid reduction dimension 0"). The
   model's train/test steps here return each scalar as a 1-element vector, whose mean over all
   replicas is the scalar again (Keras metric variables are mirrored and all-reduced on update,
   so every replica holds the same result anyway).
"""

import tensorflow as tf


def _with_vector_outputs(step):
    def step_with_vector_outputs(data):
        return tf.nest.map_structure(
            lambda t: tf.reshape(t, [1]) if getattr(t, "shape", None) is not None
            and t.shape.rank == 0 else t, step(data))

    return step_with_vector_outputs


def prepare_for_multi_worker(model, strategy, *, per_replica_batch, image_size, num_classes,
                             include_aux):
    """Builds every compiled state of `model` from specs and applies both workarounds."""
    images = tf.TensorSpec([per_replica_batch, image_size, image_size, 3], tf.float32)
    labels = tf.TensorSpec([per_replica_batch, num_classes], tf.float32)
    targets = {"predictions": labels, "aux_predictions": labels} if include_aux else labels
    with strategy.scope():
        model._symbolic_build(data_batch=(images, targets))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    model.train_step = _with_vector_outputs(model.train_step)
    model.test_step = _with_vector_outputs(model.test_step)
