"""The distributed training and evaluation steps, owned by the trainer (no `Model.fit`).

One training step, on every replica (`strategy.run`):

1. forward pass of both heads; per-example label-smoothed cross-entropy of the main head plus
   `aux_weight` x the auxiliary head's, summed and divided by the GLOBAL batch; weight decay
   (`model.losses`) divided by the number of replicas, so the all-reduced sum counts it once;
2. gradients (of the loss times the loss scale under float16);
3. one all-reduce (sum) of the gradients: every replica now holds the global-batch gradient;
4. unscale and check for inf/NaN (float16 only: a bad step is skipped and counted);
5. clip by global norm, on that all-reduced gradient, so a clip of 2.0 means the same on 1 or
   64 replicas (Keras' `global_clipnorm` clips each replica's gradient before the sum);
6. `optimizer.apply` (Keras always sums across replicas in a replica context, so it is handed
   the already-summed gradient divided by the replica count; with one replica that is a no-op);
7. the EMA update, then the trainer's own step counter (+1 for every step taken on data,
   skipped or not: epochs, checkpoints and the schedule follow the data).

`train(iterator, num_steps)` runs `num_steps` steps inside one `tf.function` call (a
`tf.range` loop over the distributed iterator), as TPUs need to amortise host round trips; a
call can run any number of steps, so an epoch is exactly `steps_per_epoch` steps. Nothing in
the step talks to the host, so with `jit_compile=True` XLA compiles the whole replica step.

`evaluate(dataset)` scores a padded, masked evaluation input (`make_input_fn(masked=True)`):
every real example has weight 1 and counts once, padding has weight 0; it stops at the first
batch with no real example (or after `max_steps`), with static shapes throughout. Examples of
several crops ([crops, S, S, 3]) score the softmax averaged over their crops. It also sums the
confusion matrix, for per-class results.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS

SUM = tf.distribute.ReduceOp.SUM


class EvaluationStopped(Exception):
    """An evaluation was stopped between two calls (`should_stop`), e.g. by SIGTERM."""


def split_outputs(outputs):
    """(main, aux or None) from a one- or two-headed model's outputs."""
    if isinstance(outputs, dict):
        return outputs[PREDICTIONS], outputs.get(AUX_PREDICTIONS)
    if isinstance(outputs, (list, tuple)):
        return outputs[0], (outputs[1] if len(outputs) > 1 else None)
    return outputs, None


def _correct(labels, probabilities, k):
    targets = tf.argmax(labels, axis=-1, output_type=tf.int32)
    if k == 1:
        predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return tf.cast(tf.equal(predicted, targets), tf.float32)
    return tf.cast(tf.math.in_top_k(targets, tf.cast(probabilities, tf.float32), k), tf.float32)


def _sum_over_replicas(stats):
    """All-reduced in the replica context (one collective, on the device; `strategy.reduce` of a
    structure fails under MultiWorkerMirroredStrategy), so every replica holds the totals."""
    return tf.distribute.get_replica_context().all_reduce(SUM, stats)


class Counters(tf.Module):
    """The trainer's own step counters (create in the strategy scope; checkpointed): `step`
    counts every step taken on data, `skipped` those that loss scaling skipped."""

    def __init__(self):
        super().__init__(name="counters")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps",
                                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class Steps:
    """The compiled training and evaluation functions of one model under one strategy.

    Create inside `strategy.scope()`. `counters` are the trainer's `Counters`, `learning_rate`
    the optimizer's (a callable on `counters.step`), `loss_scale` a `DynamicLossScale` or None,
    `ema` an `ExponentialMovingAverage` or None.
    """

    def __init__(self, model, optimizer, strategy, *, counters, learning_rate, global_batch_size,
                 num_classes, label_smoothing, aux_weight, clipnorm=None, loss_scale=None,
                 ema=None, jit_compile=False):
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.counters, self.learning_rate = counters, learning_rate
        self.global_batch_size = int(global_batch_size)
        self.label_smoothing, self.aux_weight = float(label_smoothing), float(aux_weight)
        self.clipnorm, self.loss_scale, self.ema = clipnorm, loss_scale, ema
        self.num_classes = int(num_classes)
        self.top_k = min(5, self.num_classes)
        self.jit_compile = bool(jit_compile)
        self.retrace()

    def retrace(self):
        """New compiled functions, every one of them (the XLA-compiled replica steps too):
        after layers were frozen or unfrozen, since a function reads the trainable variables
        when it is traced."""
        replica_train, replica_eval = self._replica_train_step, self._replica_eval_step
        if self.jit_compile:
            replica_train = tf.function(replica_train, jit_compile=True)
            replica_eval = tf.function(replica_eval, jit_compile=True)
        self._replica_train, self._replica_eval = replica_train, replica_eval
        self._train = tf.function(self._train_loop)
        self._evaluate = tf.function(self._eval_loop)

    # ----------------------------------------------------------------------------- loss
    def _cross_entropy(self, labels, probabilities):
        return keras.losses.categorical_crossentropy(
            labels, tf.cast(probabilities, tf.float32), label_smoothing=self.label_smoothing)

    def _loss(self, labels, outputs):
        """Per-replica share of the global loss (its sum over replicas is the global loss)."""
        main, aux = split_outputs(outputs)
        per_example = self._cross_entropy(labels, main)
        if aux is not None and self.aux_weight:
            per_example += self.aux_weight * self._cross_entropy(labels, aux)
        loss = tf.reduce_sum(per_example) / self.global_batch_size
        if self.model.losses:
            replicas = self.strategy.num_replicas_in_sync
            loss += tf.add_n([tf.cast(l, tf.float32) for l in self.model.losses]) / replicas
        return loss, main

    # ----------------------------------------------------------------------------- train
    def _replica_train_step(self, images, labels):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(images, training=True)
            loss, main = self._loss(labels, outputs)
            scaled = loss * self.loss_scale.scale if self.loss_scale is not None else loss
        grads = tape.gradient(scaled, variables)
        grads = tf.distribute.get_replica_context().all_reduce(SUM, grads)
        finite = tf.constant(True)
        if self.loss_scale is not None:
            grads = [g / self.loss_scale.scale for g in grads]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        if self.clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, self.clipnorm)
        if self.loss_scale is None:
            self._apply(grads, variables)
        else:
            tf.distribute.get_replica_context().merge_call(
                self._apply_if_finite, args=(grads, variables, finite))
        return _sum_over_replicas({"loss": loss, "top1": tf.reduce_sum(_correct(labels, main, 1)),
                                   "examples": tf.cast(tf.shape(labels)[0], tf.float32)})

    def _apply(self, grads, variables):
        replicas = self.strategy.num_replicas_in_sync
        if replicas > 1:  # Keras sums again across replicas: hand it the mean
            grads = [g / replicas for g in grads]
        self.optimizer.apply(grads, variables)
        if self.ema is not None:
            self.ema.update(self.counters.step + 1)  # TF's num_updates: steps taken, this one included

    def _apply_if_finite(self, strategy, grads, variables, finite):
        # Cross-replica context: a cond whose branch runs `optimizer.apply` (which merges
        # replicas itself) must live here, not in the replica context.
        finite = strategy.experimental_local_results(finite)[0]  # equal on every replica

        def apply():
            strategy.extended.call_for_each_replica(self._apply, args=(grads, variables))
            return tf.constant(0, tf.int64)

        skipped = tf.cond(finite, apply, lambda: tf.constant(1, tf.int64))
        self.counters.skipped.assign_add(skipped)
        self.loss_scale.update(finite)

    def _train_loop(self, iterator, num_steps):
        totals = {key: tf.constant(0.0) for key in ("loss", "top1", "examples")}
        for _ in tf.range(num_steps):
            images, labels = next(iterator)
            stats = self._first(self.strategy.run(self._replica_train, args=(images, labels)))
            totals = {key: totals[key] + stats[key] for key in totals}
            self.counters.step.assign_add(1)
        return totals

    def _first(self, per_replica):
        """The first replica's copy of values that are equal on every replica."""
        return tf.nest.map_structure(
            lambda v: self.strategy.experimental_local_results(v)[0], per_replica)

    def train(self, iterator, num_steps):
        """Runs `num_steps` training steps in one call; returns the summed loss (one value per
        step), correct top-1 predictions and examples, as Python floats."""
        totals = self._train(iterator, tf.constant(num_steps, tf.int64))
        return {key: float(value) for key, value in totals.items()}

    # ------------------------------------------------------------------------------ eval
    def _predict(self, images):
        """Main-head probabilities; images [B, crops, S, S, 3] are averaged over their crops."""
        if images.shape.rank == 4:
            return tf.cast(split_outputs(self.model(images, training=False))[0], tf.float32)
        batch, crops = images.shape[0], images.shape[1]
        flat = tf.reshape(images, [batch * crops, *images.shape[2:]])
        main = tf.cast(split_outputs(self.model(flat, training=False))[0], tf.float32)
        return tf.reduce_mean(tf.reshape(main, [batch, crops, -1]), axis=1)

    def _replica_eval_step(self, images, labels, weights):
        main = self._predict(images)
        per_example = self._cross_entropy(labels, main)
        targets = tf.argmax(labels, axis=-1, output_type=tf.int32)
        predicted = tf.argmax(main, axis=-1, output_type=tf.int32)
        return _sum_over_replicas({
            "loss": tf.reduce_sum(per_example * weights),
            "top1": tf.reduce_sum(_correct(labels, main, 1) * weights),
            "top5": tf.reduce_sum(_correct(labels, main, self.top_k) * weights),
            "examples": tf.reduce_sum(weights),
            "confusion": tf.math.confusion_matrix(targets, predicted, self.num_classes,
                                                  weights=weights, dtype=tf.float32)})

    def _eval_loop(self, iterator, num_steps):
        totals = {key: tf.constant(0.0) for key in ("loss", "top1", "top5", "examples")}
        totals["confusion"] = tf.zeros([self.num_classes, self.num_classes])
        last = tf.constant(0.0)
        for _ in tf.range(num_steps):
            batch = next(iterator)
            stats = self._first(self.strategy.run(self._replica_eval, args=batch))
            totals = {key: totals[key] + stats[key] for key in totals}
            last = stats["examples"]
        return totals, last

    def evaluate(self, dataset, *, max_steps=None, steps_per_call=1, planner=None,
                 should_stop=None):
        """Scores a masked distributed dataset once, from a fresh iterator (so every pass sees
        the same examples): {'loss', 'top1', 'top5' (main head, averaged per example),
        'examples' (how many were scored), 'confusion' ([true, predicted] counts, numpy)}.

        A call runs `steps_per_call` batches, or as many as `planner` (a CallPlanner: bounded
        in time) says. `should_stop()` is asked between calls; when it says True,
        EvaluationStopped is raised.
        """
        iterator = iter(dataset)
        totals = {"loss": 0.0, "top1": 0.0, "top5": 0.0, "examples": 0.0, "confusion": 0.0}
        done = 0
        while max_steps is None or done < max_steps:
            limit = steps_per_call if max_steps is None else min(steps_per_call, max_steps - done)
            count = planner.steps(limit) if planner is not None else limit
            started = time.perf_counter()
            sums, last = self._evaluate(iterator, tf.constant(count, tf.int64))
            totals = {key: totals[key] + sums[key].numpy() for key in totals}
            if planner is not None:
                planner.record(count, time.perf_counter() - started)
            done += count
            if float(last) == 0.0:  # every pipeline is past its data: only padding follows
                break
            if should_stop is not None and should_stop():
                raise EvaluationStopped(f"stopped after {done} evaluation batches")
        examples = totals["examples"]
        results = {key: (totals[key] / examples if examples else float("nan"))
                   for key in ("loss", "top1", "top5")}
        results = {key: float(value) for key, value in results.items()}
        results["examples"] = int(round(float(examples)))
        results["confusion"] = np.rint(totals["confusion"]).astype(np.int64)
        return results
