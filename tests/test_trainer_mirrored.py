"""`mirrored` on 2 logical CPU devices: the trainer's model, loss, optimizer and input pipeline.

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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from inception_keras import distribute
    distribute.setup_cpu_devices(2)
    import keras, numpy as np, tensorflow as tf
    import inception_keras.data as data
    from configs import get_config
    from trainers import imagenet

    keras.mixed_precision.set_dtype_policy("float32")
    config = get_config("smoke").replace(
        image_size=75, depth_multiplier=0.125, dropout_rate=0.0, global_batch_size=16,
        steps_per_epoch=12, base_learning_rate=2e-3, deterministic=True, seed=3,
        precision="float32")
    info = data.dataset_info(config.dataset, config.data_dir)

    class Losses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = []
            self.means = []
        def on_train_batch_end(self, batch, logs=None):
            self.means.append(float(logs["loss"]))  # Keras logs the running mean of the epoch
            k = len(self.means)
            self.values.append(k * self.means[-1] - (k - 1) * (self.means[-2] if k > 1 else 0))

    def compiled(strategy, weights=None):
        with strategy.scope():
            keras.utils.set_random_seed(config.seed)
            model = imagenet.build_and_compile(config, info.num_classes, "float32", 12)
        if weights is not None:
            model.set_weights(weights)
        return model

    mirrored = distribute.make_strategy("mirrored", devices="/cpu:0,/cpu:1")
    single = distribute.make_strategy("cpu")
    assert mirrored.num_replicas_in_sync == 2

    # 1) the trainer's pipeline through distribute_datasets_from_function, 6 steps
    train_ds = imagenet.distributed_dataset(mirrored, data, config, info, split="train",
                                            is_training=True)
    model = compiled(mirrored)
    initial = model.get_weights()
    losses = Losses()
    model.fit(train_ds, epochs=1, steps_per_epoch=6, callbacks=[losses], verbose=0)

    # 2) first-step loss of one global batch on 2 replicas vs 1 device, same initial weights
    # (then 10 more steps on that batch on 2 replicas: the loss must fall).
    # The batch is 8 real images twice, so each replica's batch-norm statistics (over its 8)
    # equal the single device's (over all 16) and the two losses must agree to rounding.
    images, labels = next(iter(imagenet.input_fn(data, config.replace(global_batch_size=8), info,
                                                 split="train", is_training=True)(None)))
    half = (images, labels)
    full = tf.nest.map_structure(lambda t: tf.concat([t, t], 0), half)
    first, repeated = {}, None
    for name, strategy, batch, steps in (("mirrored", mirrored, half, 11),
                                         ("single", single, full, 1)):
        dataset = strategy.distribute_datasets_from_function(
            lambda context, b=batch: tf.data.Dataset.from_tensors(b).repeat())
        step_losses = Losses()
        compiled(strategy, initial).fit(dataset, epochs=1, steps_per_epoch=steps,
                                        callbacks=[step_losses], verbose=0)
        first[name] = step_losses.values[0]
        repeated = repeated or step_losses.values
    print("RESULT " + json.dumps({"pipeline": losses.values, "repeated": repeated, "first": first,
                                  "replicas": mirrored.num_replicas_in_sync}))
""")


@pytest.mark.slow
def test_mirrored_two_cpu_devices_trains_and_matches_one_device():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")][-1]
    values = json.loads(line[len("RESULT "):])
    pipeline, repeated, first = values["pipeline"], values["repeated"], values["first"]
    assert values["replicas"] == 2
    assert len(pipeline) == 6 and all(v == v and abs(v) < 1e3 for v in pipeline), pipeline
    # same global batch, same weights: the same first-step loss on 1 device as on 2 replicas
    # (a loss summed instead of averaged over replicas would be off by 2x)
    assert first["single"] == pytest.approx(first["mirrored"], rel=1e-3), first
    # falling: 10 more mirrored steps on that batch
    assert len(repeated) == 11 and all(v == v for v in repeated)
    assert max(repeated[-3:]) < repeated[0] - 0.3, repeated
