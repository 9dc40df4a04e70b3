"""The trainer's step on 2 logical CPU replicas against one device: the clip applies to the
all-reduced global-batch gradient, and without a clip the step equals one device's (the
replicas' gradients are summed); the gradient is all-reduced once per step, also in the
Trainer's real step with BatchNorm and EMA (counted by a cross-device-ops wrapper that sees
every reduction); evaluation scores every example exactly once and reduces its confusion matrix
once per pass; with a model WITH BatchNorm and different data on each replica (the trainer's own
pipeline), checkpoints, EMA and export keep the mean of every moving mean and variance of the
replicas, and the exact evaluation agrees with the export.

Runs in a subprocess because logical devices must be configured before TensorFlow starts.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from inception_keras.training.cluster import distribute
    distribute.setup_cpu_devices(2)
    import keras, numpy as np, tensorflow as tf
    from configs.base import TrainConfig
    from inception_keras.data import make_input_fn, serialize_example
    from inception_keras.training.step import optimizers
    from inception_keras.training.step.steps import Counters, Steps, cross_entropy
    from inception_keras.training.step.updates import LocalUpdate

    CLASSES, BATCH, CLIP, LR = 4, 8, 0.01, 1.0

    class CountingReductions(tf.distribute.ReductionToOneDevice):
        # Counts, as they RUN, the elements of every reduction the strategy is asked for, and
        # the reductions of `watched` elements: the counters' assign_add ops are stateful, so a
        # tf.function runs them wherever (and as often as) the reduction itself runs.
        def __init__(self, watched):
            super().__init__()
            self.watched = watched
            self.elements = tf.Variable(0, dtype=tf.int64)
            self.watched_reductions = tf.Variable(0, dtype=tf.int64)

        def count(self, values):
            for value in values:
                size = int(np.prod(value.values[0].shape))
                self.elements.assign_add(size)
                self.watched_reductions.assign_add(int(size == self.watched))

        def reset(self):
            self.elements.assign(0)
            self.watched_reductions.assign(0)

        # ReductionToOneDevice's batch_reduce reduces each value through this one
        def reduce_implementation(self, reduce_op, per_replica_value, destinations, options):
            self.count([per_replica_value])
            return super().reduce_implementation(reduce_op, per_replica_value, destinations, options)

    counting = CountingReductions(watched=CLASSES * CLASSES)  # the confusion matrix
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"], cross_device_ops=counting)
    single = distribute.make_strategy("cpu")

    def model_without_batch_norm(classes=CLASSES):
        keras.utils.set_random_seed(0)
        image = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
        x = keras.layers.GlobalAveragePooling2D()(x)
        main = keras.layers.Dense(classes, name="predictions")(x)  # logits, as the trainer's
        aux = keras.layers.Dense(classes, name="aux_predictions")(x)
        return keras.Model(image, {"predictions": main, "aux_predictions": aux})

    def steps_for(strategy, classes=CLASSES, clipnorm=CLIP):
        with strategy.scope():
            model = model_without_batch_norm(classes)
            optimizer = optimizers.make_optimizer(TrainConfig(optimizer="sgd", momentum=0.0),
                                                  lambda: tf.constant(LR))
            optimizer.build(model.trainable_variables)
            return Steps(model, LocalUpdate.single(optimizer, lambda: tf.constant(LR)), strategy,
                         counters=Counters(), global_batch_size=BATCH, num_classes=classes,
                         label_smoothing=0.1, aux_weight=0.4, clipnorm=clipnorm)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 16, 16, 3)).astype("float32") * 10
    y = rng.integers(0, CLASSES, BATCH).astype("int32")
    results = {}

    # 1) one clipped SGD step: 2 replicas == 1 device; per-replica clipping would differ
    runs = {}
    for name, strategy in (("mirrored", mirrored), ("single", single)):
        steps = steps_for(strategy)
        initial = [w.numpy() for w in steps.model.weights]
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat())
        counting.reset()
        stats = steps.train(iter(dataset), 1)
        runs[name] = (stats["loss"], [w.numpy() for w in steps.model.weights])
        if name == "mirrored":  # what one step reduces
            results["reduced_per_step"] = int(counting.elements.numpy())
            results["trainable_parameters"] = int(sum(
                np.prod(v.shape) for v in steps.model.trainable_variables))
            counting.reset()
            steps.train(iter(dataset), 3)
            results["reduced_in_3_steps"] = int(counting.elements.numpy())
    # the same step without the clip: the gradient's all-reduce must SUM the replicas' halves
    # (a mean would halve the step; the clip above hides that by rescaling to CLIP anyway)
    unclipped = {}
    for name, strategy in (("mirrored", mirrored), ("single", single)):
        steps = steps_for(strategy, clipnorm=None)
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat())
        steps.train(iter(dataset), 1)
        unclipped[name] = [w.numpy() for w in steps.model.weights]
    results["unclipped_difference"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(unclipped["mirrored"], unclipped["single"]))
    results["unclipped_update"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(unclipped["single"], initial))
    results["loss"] = [runs["mirrored"][0], runs["single"][0]]
    results["max_weight_difference"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(runs["mirrored"][1], runs["single"][1]))

    model = model_without_batch_norm()
    def half_gradient(part):
        with tf.GradientTape() as tape:
            out = model(x[part], training=True)
            ce = lambda z: keras.losses.categorical_crossentropy(
                tf.one_hot(y[part], CLASSES), z, from_logits=True, label_smoothing=0.1)
            loss = tf.reduce_sum(ce(out["predictions"]) + 0.4 * ce(out["aux_predictions"])) / BATCH
        grads = tape.gradient(loss, model.trainable_variables)
        return tf.clip_by_global_norm(grads, CLIP)[0]
    per_replica = [a + b for a, b in zip(half_gradient(slice(0, 4)), half_gradient(slice(4, 8)))]
    per_replica_weights = [w - LR * g for w, g in zip(initial, per_replica)]
    results["per_replica_clip_difference"] = max(
        float(np.max(np.abs(a - b.numpy()))) for a, b in zip(runs["mirrored"][1], per_replica_weights))
    results["update_size"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(runs["single"][1], initial))

    # 1a) cosine schedule + AdamW (decoupled decay, not on biases) for 20 steps on 2 replicas
    # == Keras' own AdamW and CosineDecay applying the full-batch gradient on one device
    from inception_keras.training.step.schedules import cosine_schedule
    from inception_keras.training.step.updates import no_decay_variables

    def adamw_run(strategy, keras_reference):
        with strategy.scope():
            model = model_without_batch_norm()
            counters = Counters()
            schedule = cosine_schedule(0.05, 20, 4, 0.1)
            decay = dict(weight_decay=0.05) if keras_reference else {}
            optimizer = keras.optimizers.AdamW(learning_rate=schedule, **decay) \
                if keras_reference else keras.optimizers.Adam()
            optimizer.build(model.trainable_variables)
        variables = model.trainable_variables
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat()
        if keras_reference:
            optimizer.exclude_from_weight_decay(var_names=["bias"])
            for images, labels in data.take(20):
                with tf.GradientTape() as tape:
                    out = model(images, training=True)
                    loss = tf.reduce_sum(cross_entropy(labels, out["predictions"], 0.1) + 0.4 *
                                         cross_entropy(labels, out["aux_predictions"], 0.1)) / BATCH
                optimizer.apply(tape.gradient(loss, variables), variables)
            return [v.numpy() for v in variables]
        with strategy.scope():
            update = LocalUpdate.single(optimizer, lambda: schedule(counters.step), variables,
                                        decoupled_weight_decay=0.05,
                                        no_decay=no_decay_variables(model, ("bias",)))
            steps = Steps(model, update, strategy, counters=counters, global_batch_size=BATCH,
                          num_classes=CLASSES, label_smoothing=0.1, aux_weight=0.4)
        steps.train(iter(strategy.experimental_distribute_dataset(data)), 20)
        return [v.numpy() for v in variables]

    ours_adamw, keras_adamw = adamw_run(mirrored, False), adamw_run(single, True)
    results["adamw_vs_keras"] = max(float(np.max(np.abs(a - b)))
                                    for a, b in zip(ours_adamw, keras_adamw))
    results["adamw_moved"] = max(float(np.max(np.abs(a - b))) for a, b in
                                 zip(keras_adamw, [w.numpy() for w in
                                                   model_without_batch_norm().trainable_variables]))

    # 1b) sync_batch_norm: the moments of the GLOBAL batch on both replicas, as on one device
    from inception_keras.training.step.fused_batch_norm import with_training_batch_norm
    from inception_keras.training.step.replica_statistics import batch_norm_statistics

    def synchronized_steps(strategy, synchronized=True):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            image = keras.Input((16, 16, 3))
            h = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(image)
            h = keras.layers.BatchNormalization(momentum=0.5, name="bn")(h)
            h = keras.layers.GlobalAveragePooling2D()(h)
            model = with_training_batch_norm(
                keras.Model(image, keras.layers.Dense(CLASSES, name="predictions")(h)),
                fused=False, synchronized=synchronized)
            optimizer = optimizers.make_optimizer(TrainConfig(optimizer="sgd"),
                                                  lambda: tf.constant(0.1))
            optimizer.build(model.trainable_variables)
            return Steps(model, LocalUpdate.single(optimizer, lambda: tf.constant(0.1)), strategy,
                         counters=Counters(), global_batch_size=BATCH, num_classes=CLASSES,
                         label_smoothing=0.0, aux_weight=0.0)

    skewed = x.copy()
    skewed[BATCH // 2:] = skewed[BATCH // 2:] * 3 + 5  # the two replicas see different data
    synced = {}
    for name, strategy, synchronized in (("mirrored", mirrored, True), ("single", single, True),
                                         ("unsynchronized", mirrored, False)):
        steps = synchronized_steps(strategy, synchronized)
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((skewed, y)).batch(BATCH).repeat())
        steps.train(iter(dataset), 2)
        synced[name] = [[v.numpy() for v in strategy.experimental_local_results(s.value)]
                        for s in batch_norm_statistics(steps.model)]
    results["sync_replica_spread"] = max(float(np.max(np.abs(a - b)))
                                         for a, b in synced["mirrored"])
    def relative_difference(run):  # replica 0's statistics against one device's, per statistic
        return max(float(np.max(np.abs(m[0] - s[0])) / np.max(np.abs(s[0])))
                   for m, s in zip(synced[run], synced["single"]))
    results["sync_vs_single"] = relative_difference("mirrored")
    results["unsynchronized_vs_single"] = relative_difference("unsynchronized")

    # 2) a 37-image validation split through the real pipeline, global batch 8, 2 replicas
    data_dir = sys.argv[1]
    labels = rng.integers(1, CLASSES + 1, 37)
    for shard, part in enumerate((range(0, 20), range(20, 37))):
        with tf.io.TFRecordWriter(f"{data_dir}/validation-{shard:05d}-of-00002") as writer:
            for i in part:
                pixels = rng.integers(0, 256, (20, 24, 3)).astype("uint8")
                writer.write(serialize_example(tf.io.encode_jpeg(pixels).numpy(), int(labels[i]),
                                               height=20, width=24))
    options = dict(data_dir=data_dir, split="validation", image_size=16, is_training=False,
                   num_classes=CLASSES, deterministic=True)
    steps = steps_for(mirrored)
    evaluation = mirrored.distribute_datasets_from_function(
        make_input_fn("imagenet_tfrecord", global_batch_size=BATCH, masked=True, **options))
    passes = []
    for steps_per_call in (3, 100):
        counting.reset()
        passes.append(steps.evaluate(evaluation, steps_per_call=steps_per_call))
        results.setdefault("confusion_reductions", []).append(
            int(counting.watched_reductions.numpy()))
    ours, again = passes
    images = [b for b, _ in make_input_fn("imagenet_tfrecord", global_batch_size=1, **options)()]
    logits = steps.model.predict(np.concatenate(images), verbose=0)["predictions"]
    results["examples"] = ours["examples"]
    results["ours_top1"] = ours["top1"]
    results["numpy_top1"] = float(np.mean(logits.argmax(1) == labels - 1))
    results["again"] = [again["examples"], again["top1"], again["batches"]]

    # 3) batch norm on 2 replicas through the trainer: Inception at depth 0.125 on the smoke set,
    # each replica its own half of every batch
    from configs import get_config
    from inception_keras.training.loop import checkpoints
    from inception_keras.training.loop.actions import Checkpointer
    from inception_keras.training.setup import setup_run
    from inception_keras.training import inputs
    from inception_keras.training.trainer import Trainer

    config = get_config("smoke").replace(
        strategy="mirrored", devices="/cpu:0,/cpu:1", precision="float32", image_size=75,
        depth_multiplier=0.125, global_batch_size=16, steps_per_epoch=4, eval_steps=0,
        batch_norm_momentum=0.5, ema_momentum=0.5, model_dir=f"{data_dir}/run",
        export_dir=f"{data_dir}/exports").validate()
    import dataclasses
    # the trainer's own step (BN, EMA) on the counting strategy: what one step reduces
    setup = dataclasses.replace(setup_run(config), strategy=mirrored)
    trainer = Trainer(setup)
    training = iter(inputs.distributed_dataset(setup, split="train", is_training=True))
    trainer.train(training, 1)
    counting.reset()
    trainer.train(training, 2)
    results["trainer_reduced_in_2_steps"] = int(counting.elements.numpy())
    results["trainer_trainable_parameters"] = int(sum(
        np.prod(v.shape) for v in trainer.model.trainable_variables))
    results["trainer_statistics_size"] = int(sum(
        np.prod(v.shape) for v in trainer.model.non_trainable_weights))
    # every moving mean and variance (the model's non-trainable weights) and its EMA average,
    # listed here, not by the product's batch_norm_statistics (whose omissions they must catch)
    statistics = trainer.model.non_trainable_weights
    kinds = [w.path.rsplit("/", 1)[-1] for w in statistics]
    results["statistic_kinds"] = sorted(set(kinds))
    local = setup.strategy.experimental_local_results
    replica_values = [[v.numpy() for v in local(w.value)] for w in statistics]
    replica_averages = [[v.numpy() for v in local(a)] for a in trainer.ema.averages_of(statistics)]
    results["replica_spread"] = {kind: max(float(np.max(np.abs(r[0] - r[1])))
                                           for k, r in zip(kinds, replica_values) if k == kind)
                                 for kind in set(kinds)}
    manager = checkpoints.make_manager(trainer.checkpoint, f"{data_dir}/run/checkpoints", 2)
    path = Checkpointer(trainer, manager).save(3, 1.0)
    # what the checkpoint holds, read back into a fresh single-device model and EMA
    from inception_keras.training.step.ema import ExponentialMovingAverage
    from inception_keras.training.step.fused_batch_norm import with_training_batch_norm
    from inception_keras.training.trainer import build_model
    fresh = with_training_batch_norm(build_model(config, setup.info.num_classes, logits=True))
    fresh_ema = ExponentialMovingAverage(fresh, 0.5)
    tf.train.Checkpoint(model=fresh, ema=fresh_ema).restore(path).expect_partial()
    saved = [w.numpy() for w in fresh.non_trainable_weights]
    saved_averages = [a.numpy() for a in fresh_ema.averages_of(fresh.non_trainable_weights)]

    def largest(pairs):  # relative to the statistic's size: variances reach the hundreds
        return max(float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))) for a, b in pairs)
    results["checkpoint_vs_mean"] = largest(
        (s, np.mean(r, 0)) for s, r in zip(saved, replica_values))
    results["ema_vs_mean"] = largest(
        (s, np.mean(r, 0)) for s, r in zip(saved_averages, replica_averages))
    results["checkpoint_vs_replica0"] = {kind: largest(
        (s, r[0]) for k, s, r in zip(kinds, saved, replica_values) if k == kind)
        for kind in set(kinds)}
    results["ema_vs_replica0"] = {kind: largest(
        (s, r[0]) for k, s, r in zip(kinds, saved_averages, replica_averages) if k == kind)
        for kind in set(kinds)}
    evaluation = inputs.distributed_dataset(setup, split="validation", is_training=False)
    exact = trainer.evaluate(evaluation)
    export = trainer.export()
    served = tf.saved_model.load(export["savedmodel"]).signatures["predict_images"]
    fn = inputs.input_fn(config.replace(global_batch_size=50), setup.info, split="validation",
                         is_training=False, dtype="float32")
    predicted, truth = [], []
    for images, ids, weights in fn(tf.distribute.InputContext()):
        keep = weights.numpy() > 0
        if not keep.any():
            break
        pixels = (images.numpy()[keep] + 1.0) * 127.5
        predicted += served(images=tf.constant(pixels))["probabilities"].numpy().argmax(1).tolist()
        truth += ids.numpy()[keep].tolist()
    served_confusion = np.zeros_like(exact["confusion"])
    np.add.at(served_confusion, (truth, predicted), 1)
    results["exact"] = [exact["top1"], exact["examples"]]
    results["served_top1"] = float(np.mean(np.array(predicted) == np.array(truth)))
    results["confusions_equal"] = bool(np.array_equal(served_confusion, exact["confusion"]))
    print("RESULTS " + json.dumps(results))
""")


@pytest.mark.slow
def test_two_replicas_reduce_once_agree_on_batch_norm_and_evaluate_every_example(tmp_path):
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("RESULTS "))
    results = json.loads(line[len("RESULTS "):])
    mirrored_loss, single_loss = results["loss"]
    assert mirrored_loss == pytest.approx(single_loss, rel=1e-5)
    assert results["max_weight_difference"] < 1e-6
    # the test can fail: clipping each replica's half before the sum moves the weights further
    assert results["per_replica_clip_difference"] > 10 * results["max_weight_difference"] + 1e-4
    assert results["update_size"] > 1e-3  # the clip was active and the step did something
    # unclipped, the 2-replica step equals one device's: the replicas' gradients are summed
    assert results["unclipped_update"] > 1e-2
    assert results["unclipped_difference"] < 1e-3 * results["unclipped_update"]
    assert results["examples"] == 37
    assert results["ours_top1"] == pytest.approx(results["numpy_top1"], abs=1e-6)
    # 37 images at batch 8: 5 batches, also when one call may run 100
    assert results["again"] == [37, pytest.approx(results["ours_top1"], abs=1e-6), 5]
    # one reduction of the confusion matrix per pass (5 batches), not one per batch
    assert results["confusion_reductions"] == [1, 1]

    # one all-reduce of the gradient per step: the trainable parameters plus a few scalars
    parameters = results["trainable_parameters"]
    assert parameters <= results["reduced_per_step"] <= parameters + 8
    assert results["reduced_in_3_steps"] == 3 * results["reduced_per_step"]
    # the trainer's real step (batch norm, EMA) too: its EMA averages and BN statistics cross
    # no replica per step (one more reduction of either would add their size)
    parameters = results["trainer_trainable_parameters"]
    assert results["trainer_statistics_size"] > 8
    assert 2 * parameters <= results["trainer_reduced_in_2_steps"] <= 2 * (parameters + 8)

    # cosine + AdamW on 2 replicas == Keras' AdamW + CosineDecay on one device, 20 steps
    assert results["adamw_moved"] > 1e-2 and results["adamw_vs_keras"] < 1e-5

    # sync_batch_norm: both replicas normalise with the global batch, as one device does
    # relative to each statistic's size (the skewed half makes them large): rounding is ~1e-7,
    # per-replica moments are off by > 1e-2
    assert results["sync_replica_spread"] < 1e-5 and results["sync_vs_single"] < 1e-5
    assert results["unsynchronized_vs_single"] > 1e-2

    # batch norm: the replicas' statistics differ (different data), the checkpoint, the EMA and
    # the export hold their mean, and the exact evaluation scores what was exported
    assert results["statistic_kinds"] == ["moving_mean", "moving_variance"]
    assert min(results["replica_spread"].values()) > 1e-3
    assert results["checkpoint_vs_mean"] < 1e-5 and results["ema_vs_mean"] < 1e-5
    assert min(results["checkpoint_vs_replica0"].values()) > 1e-4
    assert min(results["ema_vs_replica0"].values()) > 1e-4
    assert results["exact"][1] == 500
    assert results["served_top1"] == pytest.approx(results["exact"][0], abs=1e-9)
    assert results["confusions_equal"]
