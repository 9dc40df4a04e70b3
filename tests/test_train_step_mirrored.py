"""The trainer's step on 2 logical CPU replicas against one device: the clip applies to the
all-reduced global-batch gradient, and evaluation scores every example exactly once.

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
    from inception_keras.training import distribute
    distribute.setup_cpu_devices(2)
    import keras, numpy as np, tensorflow as tf
    from configs.base import TrainConfig
    from inception_keras.data import make_input_fn, serialize_example
    from inception_keras.training import optimizers
    from inception_keras.training.steps import Counters, Steps

    CLASSES, BATCH, CLIP, LR = 4, 8, 0.01, 1.0
    mirrored = distribute.make_strategy("mirrored", devices="/cpu:0,/cpu:1")
    single = distribute.make_strategy("cpu")

    def model_without_batch_norm(classes=CLASSES):
        keras.utils.set_random_seed(0)
        image = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(image)
        x = keras.layers.GlobalAveragePooling2D()(x)
        main = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
        aux = keras.layers.Dense(classes, activation="softmax", name="aux_predictions")(x)
        return keras.Model(image, {"predictions": main, "aux_predictions": aux})

    def steps_for(strategy, classes=CLASSES, clipnorm=CLIP):
        with strategy.scope():
            model = model_without_batch_norm(classes)
            optimizer = optimizers.make_optimizer(TrainConfig(optimizer="sgd", momentum=0.0),
                                                  lambda: tf.constant(LR))
            optimizer.build(model.trainable_variables)
            return Steps(model, optimizer, strategy, counters=Counters(),
                         learning_rate=lambda: tf.constant(LR), global_batch_size=BATCH,
                         num_classes=classes, label_smoothing=0.1, aux_weight=0.4,
                         clipnorm=clipnorm)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 16, 16, 3)).astype("float32") * 10
    y = np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, BATCH)]
    results = {}

    # 1) one clipped SGD step: 2 replicas == 1 device; per-replica clipping would differ
    runs = {}
    for name, strategy in (("mirrored", mirrored), ("single", single)):
        steps = steps_for(strategy)
        initial = [w.numpy() for w in steps.model.weights]
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat())
        stats = steps.train(iter(dataset), 1)
        runs[name] = (stats["loss"], [w.numpy() for w in steps.model.weights])
    results["loss"] = [runs["mirrored"][0], runs["single"][0]]
    results["max_weight_difference"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(runs["mirrored"][1], runs["single"][1]))

    model = model_without_batch_norm()
    def half_gradient(part):
        with tf.GradientTape() as tape:
            out = model(x[part], training=True)
            ce = lambda p: keras.losses.categorical_crossentropy(y[part], p, label_smoothing=0.1)
            loss = tf.reduce_sum(ce(out["predictions"]) + 0.4 * ce(out["aux_predictions"])) / BATCH
        grads = tape.gradient(loss, model.trainable_variables)
        return tf.clip_by_global_norm(grads, CLIP)[0]
    per_replica = [a + b for a, b in zip(half_gradient(slice(0, 4)), half_gradient(slice(4, 8)))]
    per_replica_weights = [w - LR * g for w, g in zip(initial, per_replica)]
    results["per_replica_clip_difference"] = max(
        float(np.max(np.abs(a - b.numpy()))) for a, b in zip(runs["mirrored"][1], per_replica_weights))
    results["update_size"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(runs["single"][1], initial))

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
    ours = steps.evaluate(evaluation, steps_per_call=3)
    images = [b for b, _ in make_input_fn("imagenet_tfrecord", global_batch_size=1, **options)()]
    probabilities = steps.model.predict(np.concatenate(images), verbose=0)["predictions"]
    results["examples"] = ours["examples"]
    results["ours_top1"] = ours["top1"]
    results["numpy_top1"] = float(np.mean(probabilities.argmax(1) == labels - 1))
    again = steps.evaluate(evaluation)
    results["again"] = [again["examples"], again["top1"]]
    print("RESULTS " + json.dumps(results))
""")


@pytest.mark.slow
def test_two_replicas_clip_the_global_gradient_and_evaluate_every_example(tmp_path):
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
    assert results["examples"] == 37
    assert results["ours_top1"] == pytest.approx(results["numpy_top1"], abs=1e-6)
    assert results["again"] == [37, pytest.approx(results["ours_top1"], abs=1e-6)]
