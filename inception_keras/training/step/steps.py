"""The distributed training and evaluation steps, owned by the trainer (no `Model.fit`).

One training step, on every replica (`strategy.run`):

1. forward pass of both heads, which return LOGITS (the softmax lives in the inference and
   exported models only, so the loss never depends on Keras recovering logits from a softmax);
   per-example cross-entropy of the main head plus `aux_weight` x the auxiliary head's, summed
   and divided by the GLOBAL batch; class-id labels are label-smoothed here, soft targets (MixUp /
   CutMix, smoothed in the input pipeline) are used as they are; weight decay (`model.losses`)
   divided by the number of replicas, so the all-reduced sum counts it once;
2. gradients (of the loss times the loss scale under float16);
3. ONE all-reduce (sum) of the gradients: every replica now holds the global-batch gradient,
   and nothing else of the step crosses replicas but four scalars of statistics (the loss,
   the main head's plain cross-entropy, correct top-1, examples);
4. unscale and check for inf/NaN (float16 only: a bad step is skipped and counted);
5. clip by global norm, on that all-reduced gradient, so a clip of 2.0 means the same on 1 or
   64 replicas (Keras' `global_clipnorm` clips each replica's gradient before the sum);
6. the update (`updates.LocalUpdate`): the optimizer's own per-variable math applied by every
   replica to its own copy of the weights and slots, identical everywhere since the gradient
   is (Keras' `optimizer.apply` in a replica context would all-reduce the gradient a second
   time);
7. the EMA update, then the trainer's own step counter (+1 for every step taken on data,
   skipped or not: epochs, checkpoints and the schedule follow the data).

`train(iterator, num_steps)` runs `num_steps` steps inside one `tf.function` call (a
`tf.range` loop over the distributed iterator), as TPUs need to amortise host round trips.
Nothing in the step talks to the host, so with `jit_compile=True` XLA compiles the whole
replica step. `retrace()` rebuilds every compiled function (after freezing or unfreezing).

`evaluate(dataset)` scores a padded, masked evaluation input (`make_input_fn(masked=True)`):
every real example has weight 1 and counts once, padding has weight 0. Each replica adds its
statistics to its own copy of on-read accumulators (`EvalTotals`), which are reduced once per
pass, when read; a call stops at the first batch with no real example (one scalar all-reduce
per batch decides it for every replica), so it never runs the model on padding-only batches.
Examples of several crops ([crops, S, S, 3]) score the softmax averaged over their crops. The
loss it reports is the plain cross-entropy of the main head (no label smoothing), comparable
with published numbers.
"""

import time

import numpy as np
import tensorflow as tf

from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS

SUM = tf.distribute.ReduceOp.SUM
_EVAL_SUMS = ("cross_entropy", "top1", "top5", "examples")
# what train() sums over its steps: the loss (one value per step), correct top-1, examples and
# the main head's cross-entropy without label smoothing (one value per example)
TRAIN_SUMS = ("loss", "top1", "examples", "cross_entropy")


class EvaluationStopped(Exception):
    """An evaluation was stopped between two calls (`should_stop`), e.g. by SIGTERM."""


def split_outputs(outputs):
    """(main, aux or None) from a one- or two-headed model's outputs."""
    if isinstance(outputs, dict):
        return outputs[PREDICTIONS], outputs.get(AUX_PREDICTIONS)
    if isinstance(outputs, (list, tuple)):
        return outputs[0], (outputs[1] if len(outputs) > 1 else None)
    return outputs, None


def class_ids(labels):
    """Class ids [B] from labels given as ids [B] or as (soft) targets [B, C]."""
    if labels.shape.rank == 1:
        return tf.cast(labels, tf.int32)
    return tf.argmax(labels, axis=-1, output_type=tf.int32)


def cross_entropy(labels, logits, label_smoothing=0.0):
    """Per-example cross-entropy from logits: class ids are smoothed with `label_smoothing`
    (targets (1 - e) one-hot + e / C), soft targets [B, C] are used as they are."""
    logits = tf.cast(logits, tf.float32)
    if labels.shape.rank != 1:
        return tf.nn.softmax_cross_entropy_with_logits(tf.cast(labels, tf.float32), logits)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), logits)
    if label_smoothing:
        # -sum_j (e / C) log p_j = e * (logsumexp(z) - mean(z))
        uniform = tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_mean(logits, axis=-1)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * uniform
    return loss


def _in_top_k(targets, scores, k):
    if k == 1:
        return tf.cast(tf.equal(tf.argmax(scores, axis=-1, output_type=tf.int32), targets),
                      tf.float32)
    return tf.cast(tf.math.in_top_k(targets, tf.cast(scores, tf.float32), k), tf.float32)


class Counters(tf.Module):
    """The trainer's own step counters (create in the strategy scope; checkpointed): `step`
    counts every step taken on data, `skipped` those that loss scaling skipped."""

    def __init__(self):
        super().__init__(name="counters")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.skipped = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps",
                                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class EvalTotals(tf.Module):
    """Evaluation sums kept per replica (on-read variables: each replica adds to its own copy
    with no communication) and all-reduced once, together, after the pass (create in the
    strategy scope)."""

    def __init__(self, strategy, num_classes):
        super().__init__(name="eval_totals")
        self.strategy = strategy
        on_read = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.SUM)
        self.sums = tf.Variable(tf.zeros([len(_EVAL_SUMS)]), name="sums", **on_read)
        self.confusion = tf.Variable(tf.zeros([num_classes, num_classes]), name="confusion",
                                     **on_read)
        self._reduced = tf.function(self._reduce)

    def reset(self):
        self.sums.assign(tf.zeros_like(self.sums))
        self.confusion.assign(tf.zeros_like(self.confusion))

    def add(self, sums, confusion):
        """In a replica context: adds to this replica's copies."""
        self.sums.assign_add(sums)
        self.confusion.assign_add(confusion)

    def _reduce(self):
        def replica_fn():
            local = [tf.identity(self.sums), tf.identity(self.confusion)]  # this replica's
            return tf.distribute.get_replica_context().all_reduce(SUM, local)

        return [self.strategy.experimental_local_results(v)[0]
                for v in self.strategy.run(replica_fn)]

    def results(self):
        """{'cross_entropy', 'top1', 'top5' (per example), 'examples', 'confusion'}: one
        all-reduce of the sums and the confusion matrix."""
        sums, confusion = (t.numpy() for t in self._reduced())
        sums = dict(zip(_EVAL_SUMS, sums.tolist()))
        examples = sums["examples"]
        results = {key: (sums[key] / examples if examples else float("nan"))
                   for key in ("cross_entropy", "top1", "top5")}
        results["examples"] = int(round(examples))
        results["confusion"] = np.rint(confusion).astype(np.int64)
        return results


class Steps:
    """The compiled training and evaluation functions of one model under one strategy.

    Create inside `strategy.scope()`. `model` returns logits. `update` is an
    `updates.LocalUpdate` (the optimizer math, applied per replica), `counters` the trainer's
    `Counters`, `loss_scale` a `DynamicLossScale` or None, `ema` an `ExponentialMovingAverage`
    or None.
    """

    def __init__(self, model, update, strategy, *, counters, global_batch_size, num_classes,
                 label_smoothing, aux_weight, clipnorm=None, loss_scale=None, ema=None,
                 jit_compile=False, gradient_norms=False):
        self.model, self.update, self.strategy = model, update, strategy
        self.counters = counters
        self.global_batch_size = int(global_batch_size)
        self.label_smoothing, self.aux_weight = float(label_smoothing), float(aux_weight)
        self.clipnorm, self.loss_scale, self.ema = clipnorm, loss_scale, ema
        self.num_classes = int(num_classes)
        self.top_k = min(5, self.num_classes)
        self.totals = EvalTotals(strategy, self.num_classes)
        self.jit_compile = bool(jit_compile)
        self.gradient_norms = bool(gradient_norms)  # train() also returns the last step's
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

    # ----------------------------------------------------------------------------- train
    def _loss(self, labels, outputs):
        """Per-replica share of the global loss (its sum over replicas is the global loss)."""
        main, aux = split_outputs(outputs)
        per_example = cross_entropy(labels, main, self.label_smoothing)
        if aux is not None and self.aux_weight:
            per_example += self.aux_weight * cross_entropy(labels, aux, self.label_smoothing)
        loss = tf.reduce_sum(per_example) / self.global_batch_size
        if self.model.losses:
            replicas = self.strategy.num_replicas_in_sync
            loss += tf.add_n([tf.cast(l, tf.float32) for l in self.model.losses]) / replicas
        return loss, main

    def _replica_train_step(self, images, labels):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model(images, training=True)
            loss, main = self._loss(labels, outputs)
            scaled = loss * self.loss_scale.scale if self.loss_scale is not None else loss
        grads = tape.gradient(scaled, variables)
        grads = tf.distribute.get_replica_context().all_reduce(SUM, grads)  # the only one
        finite = tf.constant(True)
        if self.loss_scale is not None:
            grads = [g / self.loss_scale.scale for g in grads]
            # the same all-reduced gradient on every replica: the same verdict everywhere
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        norms = tf.stack([tf.norm(g) for g in grads]) if self.gradient_norms else tf.zeros([0])
        if self.clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, self.clipnorm)

        def apply():
            self.update.apply(grads, variables)
            if self.ema is not None:
                self.ema.update(self.counters.step + 1)  # TF's num_updates: this step included
            return tf.constant(True)

        applied = tf.cond(finite, apply, lambda: tf.constant(False)) \
            if self.loss_scale is not None else apply()
        correct = _in_top_k(class_ids(labels), main, 1)
        # the main head's, without label smoothing: what the evaluation's cross-entropy measures
        plain = tf.reduce_sum(cross_entropy(labels, main))
        stats = tf.distribute.get_replica_context().all_reduce(
            SUM, tf.stack([loss, tf.reduce_sum(correct), tf.cast(tf.shape(correct)[0],
                                                                 tf.float32), plain]))
        return stats, applied, norms

    def _train_loop(self, iterator, num_steps):
        totals = tf.zeros([len(TRAIN_SUMS)])
        norms = tf.zeros([len(self.model.trainable_variables) if self.gradient_norms else 0])
        for _ in tf.range(num_steps):
            images, labels = next(iterator)
            stats, applied, norms = self._first(
                self.strategy.run(self._replica_train, args=(images, labels)))
            totals += stats
            self.update.finish(applied)
            if self.loss_scale is not None:
                self.counters.skipped.assign_add(1 - tf.cast(applied, tf.int64))
                self.loss_scale.update(applied)
            self.counters.step.assign_add(1)
        return totals, norms

    def _first(self, per_replica):
        """The first replica's copy of values that are equal on every replica."""
        return tf.nest.map_structure(
            lambda v: self.strategy.experimental_local_results(v)[0], per_replica)

    def train(self, iterator, num_steps):
        """Runs `num_steps` training steps in one call; returns the summed loss (one value per
        step), correct top-1 predictions, examples and the main head's plain cross-entropy (one
        value per example; MixUp/CutMix: against the mixed targets), as Python floats (and, with
        `gradient_norms`, the last step's all-reduced gradient norm per trainable variable)."""
        totals, norms = self._train(iterator, tf.constant(num_steps, tf.int64))
        stats = dict(zip(TRAIN_SUMS, map(float, totals.numpy())))
        if self.gradient_norms:
            stats["gradient_norms"] = norms.numpy()
        return stats

    # ------------------------------------------------------------------------------ eval
    def _predict(self, images):
        """Main-head probabilities; images [B, crops, S, S, 3] are averaged over their crops."""
        if images.shape.rank == 4:
            logits = split_outputs(self.model(images, training=False))[0]
            return tf.nn.softmax(tf.cast(logits, tf.float32))
        batch, crops = images.shape[0], images.shape[1]
        flat = tf.reshape(images, [batch * crops, *images.shape[2:]])
        logits = split_outputs(self.model(flat, training=False))[0]
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        return tf.reduce_mean(tf.reshape(probabilities, [batch, crops, -1]), axis=1)

    def _replica_eval_step(self, images, labels, weights):
        probabilities = self._predict(images)
        targets = class_ids(labels)
        likelihood = tf.gather(probabilities, targets, axis=1, batch_dims=1)
        plain_cross_entropy = -tf.math.log(tf.maximum(likelihood, 1e-12))
        predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        sums = tf.stack([tf.reduce_sum(plain_cross_entropy * weights),
                         tf.reduce_sum(_in_top_k(targets, probabilities, 1) * weights),
                         tf.reduce_sum(_in_top_k(targets, probabilities, self.top_k) * weights),
                         tf.reduce_sum(weights)])
        confusion = tf.math.confusion_matrix(targets, predicted, self.num_classes,
                                             weights=weights, dtype=tf.float32)
        self.totals.add(sums, confusion)

    def _real_examples(self, weights):
        return tf.distribute.get_replica_context().all_reduce(SUM, tf.reduce_sum(weights))

    def _eval_loop(self, iterator, num_steps):
        batches, finished = tf.constant(0, tf.int64), tf.constant(False)
        for _ in tf.range(num_steps):
            images, labels, weights = next(iterator)
            real = self._first(self.strategy.run(self._real_examples, args=(weights,)))
            if real == 0.0:  # every pipeline is past its data: only padding follows
                finished = tf.constant(True)
                break
            self.strategy.run(self._replica_eval, args=(images, labels, weights))
            batches += 1
        return batches, finished

    def probabilities(self, dataset, *, max_steps=None):
        """(main-head probabilities [N, C] averaged over each image's crops, class ids [N]) of
        the real examples of a masked, NON-distributed evaluation input, in its order, batch
        by batch on the host's default device (an ensemble's member; see training/ensemble.py).
        `max_steps` bounds the batches."""
        predict = tf.function(self._predict)
        rows, ids = [], []
        for batch, (images, labels, weights) in enumerate(dataset):
            real = weights.numpy() > 0
            if not real.any() or (max_steps is not None and batch >= max_steps):
                break
            rows.append(predict(images).numpy()[real])
            ids.append(class_ids(labels).numpy()[real])
        if not rows:
            return np.zeros([0, self.num_classes], np.float32), np.zeros([0], np.int32)
        return np.concatenate(rows), np.concatenate(ids)

    def evaluate(self, dataset, *, max_steps=None, steps_per_call=1, planner=None,
                 should_stop=None):
        """Scores a masked distributed dataset once, from a fresh iterator (so every pass sees
        the same examples): {'cross_entropy' (plain, main head), 'top1', 'top5' (averaged per
        example), 'examples' (how many were scored), 'batches' (how many the model ran on),
        'confusion' ([true, predicted] counts, numpy)}.

        A call runs up to `steps_per_call` batches, or as many as `planner` (a CallPlanner:
        bounded in time) says; `max_steps` bounds the pass. `should_stop()` is asked between
        calls; when it says True, EvaluationStopped is raised.
        """
        self.totals.reset()
        iterator = iter(dataset)
        done = 0
        while max_steps is None or done < max_steps:
            limit = steps_per_call if max_steps is None else min(steps_per_call, max_steps - done)
            count = planner.steps(limit) if planner is not None else limit
            started = time.perf_counter()
            batches, finished = self._evaluate(iterator, tf.constant(count, tf.int64))
            if planner is not None:
                planner.record(count, time.perf_counter() - started)
            done += int(batches)
            if bool(finished):
                break
            if should_stop is not None and should_stop():
                raise EvaluationStopped(f"stopped after {done} evaluation batches")
        results = self.totals.results()
        results["batches"] = done
        return results
