"""Steady-state training throughput of the trainer's step vs keras.applications.InceptionV3.

Ours is exactly what `python -m trainers.imagenet` runs per step: the trainer's own step
function (`build_training`: the two-headed model, RMSprop 0.9/0.9/1.0, clip 2.0 after the
all-reduce, label smoothing 0.1, aux x0.4),
inside the trainer's `cpu` strategy, fed by the trainer's input pipeline from the bundled smoke
TFRecords (decode, random crop, flip, resize to 299) through
`distribute_datasets_from_function`. The reference is `keras.applications.InceptionV3`
(no aux head) compiled with the same optimizer and loss in float32, fed one in-memory batch.

Ours is timed twice, with `--precision` (default auto: mixed_bfloat16 on a CPU with
AVX512_BF16/AMX) and in float32. A third contender is the same model, loss, optimizer, clip,
precision and input pipeline trained by `model.fit` (owning the loop must cost nothing). All
train in the same process, interleaved round by round (order alternating), `--steps` timed
steps per round after one untimed step; a model's speed is batch / median step time (time
between consecutive step ends, data waits included).

    python benchmarks/train_throughput.py [--precision auto] [--rounds 2] [--steps 3]

Last line: RESULT vs_keras_fp32_auto=<ratio> vs_keras_fp32_float32=<ratio> peak_rss_gb=<n>
vs_keras_fit_same_model=<ratio> (targets on an AVX512_BF16 CPU: auto >= 1.8, float32 >= 0.95,
same model >= 0.98).
"""

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import inception_keras.data as data  # noqa: E402
from configs import get_config  # noqa: E402
from inception_keras.training import distribute  # noqa: E402
from trainers import imagenet  # noqa: E402


class StepTimes(keras.callbacks.Callback):
    """Seconds between consecutive step ends (the first step of a fit call is not timed)."""

    def __init__(self):
        super().__init__()
        self.times, self._last = [], None

    def on_train_begin(self, logs=None):
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


def ours(config, policy, strategy, info):
    """The trainer's own step (`build_training`) and distributed input pipeline under `policy`."""
    config = config.replace(precision=policy)
    keras.mixed_precision.set_dtype_policy(policy)
    with strategy.scope():
        steps = imagenet.build_training(config, info.num_classes, policy, strategy)
    keras.mixed_precision.set_dtype_policy("float32")
    dataset = imagenet.distributed_dataset(strategy, data, config, info, split="train",
                                           is_training=True)
    iterator = iter(dataset)

    def run(count):
        times, last = [], time.perf_counter()
        for _ in range(count):
            steps.train(iterator, 1)  # returns Python floats: the step has finished
            now = time.perf_counter()
            times.append(now - last)
            last = now
        return times[1:]  # the first includes whatever ran before this call

    return run


def keras_fit_same_model(config, policy, strategy, info):
    """The same model (fused BN, weight decay), loss, optimizer, clip, precision and input
    pipeline, trained by `model.fit` instead of the trainer's step."""
    from inception_keras.training import losses, optimizers
    from inception_keras.training.schedules import make_schedule

    config = config.replace(precision=policy)
    keras.mixed_precision.set_dtype_policy(policy)
    with strategy.scope():
        model = imagenet.build_training(config, info.num_classes, policy, strategy).model
        schedule, _ = make_schedule(config, global_batch_size=config.global_batch_size,
                                    steps_per_epoch=config.steps_per_epoch)
        optimizer = optimizers.make_optimizer(config, schedule)
        optimizer.global_clipnorm = config.global_clipnorm
        loss, weights = losses.make_losses(include_aux=True,
                                           label_smoothing=config.label_smoothing,
                                           aux_weight=config.aux_loss_weight)
        model.compile(optimizer=optimizer, loss=loss, loss_weights=weights, jit_compile=False)
    keras.mixed_precision.set_dtype_policy("float32")
    make = imagenet.input_fn(data, config, info, split="train", is_training=True)
    to_targets = losses.targets_for(True)
    dataset = strategy.distribute_datasets_from_function(lambda c: make(c).map(to_targets))
    return fit_runner(model, dataset)


def fit_runner(model, dataset):
    timer = StepTimes()

    def run(count):
        timer.times.clear()
        model.fit(dataset, epochs=1, steps_per_epoch=count, verbose=0, callbacks=[timer])
        return list(timer.times)

    return run


def reference(config, num_classes):
    """keras.applications.InceptionV3, float32, same optimizer and loss, in-memory batch."""
    keras.mixed_precision.set_dtype_policy("float32")
    model = keras.applications.InceptionV3(weights=None, classes=num_classes,
                                           input_shape=(config.image_size, config.image_size, 3))
    model.compile(
        optimizer=keras.optimizers.RMSprop(config.base_learning_rate, rho=config.rmsprop_rho,
                                           momentum=config.momentum, epsilon=config.epsilon,
                                           global_clipnorm=config.global_clipnorm),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing))
    rng = np.random.default_rng(0)
    size, batch = config.image_size, config.global_batch_size
    images = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32"))
    labels = tf.constant(np.eye(num_classes, dtype="float32")[np.arange(batch) % num_classes])
    return fit_runner(model, tf.data.Dataset.from_tensors((images, labels)).repeat())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="auto",
                        help="ours: auto | float32 | mixed_bfloat16 | mixed_float16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model per round")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=299)
    args = parser.parse_args()

    strategy = distribute.make_strategy("cpu")
    policy = distribute.resolve_precision(args.precision, strategy)
    info = data.dataset_info("smoke", None)
    config = get_config("paper").replace(
        dataset="smoke", image_size=args.image_size, global_batch_size=args.batch_size,
        steps_per_epoch=info.num_train_examples // args.batch_size, ema_momentum=None,
        strategy="cpu")
    print(f"precision auto -> {policy} "
          f"({distribute.precision_reason(args.precision, policy, strategy)}); "
          f"batch {args.batch_size} at {args.image_size}px; oneDNN "
          f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default (on)')}", flush=True)

    contenders = {f"ours_{policy}": ours(config, policy, strategy, info),
                  f"keras_fit_{policy}": keras_fit_same_model(config, policy, strategy, info)}
    if policy != "float32":
        contenders["ours_float32"] = ours(config, "float32", strategy, info)
    contenders["keras_fp32"] = reference(config, info.num_classes)
    times = {name: [] for name in contenders}

    for name, run in contenders.items():  # trace and warm up
        start = time.perf_counter()
        run(2)
        print(f"warm-up {name}: {time.perf_counter() - start:.0f} s", flush=True)
    for index in range(args.rounds):
        order = list(contenders) if index % 2 == 0 else list(reversed(contenders))
        for name in order:
            times[name] += contenders[name](args.steps + 1)
        print(f"round {index + 1}: " + ", ".join(
            f"{name} {statistics.median(times[name]):.2f} s/step" for name in contenders),
            flush=True)

    speed = {name: args.batch_size / statistics.median(values) for name, values in times.items()}
    for name, value in speed.items():
        print(f"{name:>22}: {value:6.2f} images/s")
    auto = speed[f"ours_{policy}"] / speed["keras_fp32"]
    fp32 = speed.get("ours_float32", speed[f"ours_{policy}"]) / speed["keras_fp32"]
    same = speed[f"ours_{policy}"] / speed[f"keras_fit_{policy}"]
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"RESULT vs_keras_fp32_auto={auto:.2f} vs_keras_fp32_float32={fp32:.2f} "
          f"peak_rss_gb={peak_gb:.1f} vs_keras_fit_same_model={same:.3f}")


if __name__ == "__main__":
    main()
