"""Training throughput of the trainer's step, and how long a run takes to reach its first step.

Steady state (one process, contenders interleaved round by round, order alternating, `--steps`
timed steps per round after a warm-up; speed = batch / median seconds between step ends, data
waits included), at 299 px, global batch 32 (`--batch_size`):

- ours: exactly what `python -m trainers.imagenet --config paper` runs per step, the trainer's
  own step (`Trainer`: two heads returning logits, TF-1 RMSprop 0.9/0.9/1.0, clip 2.0 after the
  single all-reduce, label smoothing 0.1, aux x0.4, weight decay) inside the `cpu` strategy, fed
  by the trainer's input pipeline from the bundled smoke TFRecords (decode, random crop, flip,
  resize to 299) through `distribute_datasets_from_function`; with `--precision` (default auto:
  mixed_bfloat16 on a CPU with AVX512_BF16/AMX) and in float32;
- keras_fit: the same model, loss, optimizer, clip, precision and input pipeline trained by
  `model.fit` (owning the loop must cost nothing);
- keras_fp32: `keras.applications.InceptionV3` (no aux head) compiled with the same optimizer
  and loss in float32, fed one in-memory batch;
- mirrored2: ours on `MirroredStrategy` over 2 logical CPU devices, same global batch (16 per
  replica), auto precision: on a 2-core CPU this shows scheduling more than collectives.

Time to first step (`--first_step_runs` subprocesses each, median; depth_multiplier 0.125 at
96 px on the smoke set, float32): seconds from process start to the end of the first training
step, ours = `python -m trainers.imagenet` (its first progress line) vs a script that builds the
same model and runs `model.fit` with `jit_compile=False` on the same input (its first
`on_train_batch_end`).

    python benchmarks/train_throughput.py [--precision auto] [--rounds 2] [--steps 3]

Last line: RESULT vs_keras_fp32_auto=<ratio> vs_keras_fp32_float32=<ratio> peak_rss_gb=<n>
vs_keras_fit_same_model=<ratio> mirrored2_vs_one_device=<ratio>
time_to_first_step_vs_keras_fit=<ratio> (targets on an AVX512_BF16 CPU: auto >= 1.8, float32
>= 0.95, same model >= 0.98, first step <= 1.0; mirrored2 is reported only).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from inception_keras.training.cluster import distribute  # noqa: E402

distribute.setup_cpu_devices(2)  # before TensorFlow starts: one device, or two replicas

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import inception_keras.data as data  # noqa: E402
from configs import get_config  # noqa: E402
from inception_keras.training import inputs  # noqa: E402
from inception_keras.training.step import optimizers
from inception_keras.training.setup import RunSetup  # noqa: E402
from inception_keras.training.trainer import Trainer  # noqa: E402


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


def run_setup(config, strategy, policy, info):
    keras.mixed_precision.set_dtype_policy(policy)
    return RunSetup(config.replace(precision=policy), strategy, policy, "benchmark", info)


def ours(config, policy, strategy, info):
    """The trainer's own step and distributed input pipeline under `policy`."""
    setup = run_setup(config, strategy, policy, info)
    trainer = Trainer(setup)
    iterator = iter(inputs.distributed_dataset(setup, split="train", is_training=True))
    keras.mixed_precision.set_dtype_policy("float32")

    def run(count):
        times, last = [], time.perf_counter()
        for _ in range(count):
            trainer.train(iterator, 1)  # returns Python floats: the step has finished
            now = time.perf_counter()
            times.append(now - last)
            last = now
        return times[1:]  # the first includes whatever ran before this call

    return run


def keras_fit_same_model(config, policy, strategy, info):
    """The same model (logits, fused BN, weight decay), loss, optimizer, clip, precision and
    input pipeline, trained by `model.fit` instead of the trainer's step."""
    setup = run_setup(config, strategy, policy, info)
    with strategy.scope():
        trainer = Trainer(setup)  # its model and its optimizer's settings, not its step
        optimizer = optimizers.make_optimizer(config, trainer.learning_rate)
        optimizer.global_clipnorm = config.global_clipnorm
        smoothed = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing)
        trainer.model.compile(optimizer=optimizer, loss=[smoothed, smoothed],
                              loss_weights=[1.0, config.aux_loss_weight], jit_compile=False)
    make = inputs.input_fn(config, info, split="train", is_training=True)
    keras.mixed_precision.set_dtype_policy("float32")

    def with_targets(context):
        def targets(images, ids):
            one_hot = tf.one_hot(ids, info.num_classes)
            return images, {"predictions": one_hot, "aux_predictions": one_hot}

        return make(context).map(targets)

    return fit_runner(trainer.model, strategy.distribute_datasets_from_function(with_targets))


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


# ------------------------------------------------------------------------- time to first step

KERAS_FIT_SCRIPT = textwrap.dedent("""
    import os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, sys.argv[1])
    import keras, tensorflow as tf
    from inception_keras.data import make_input_fn
    from inception_keras.models.inception_v3 import build_inception_v3

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            print("first step done", flush=True)
            self.model.stop_training = True

    model = build_inception_v3(input_shape=(96, 96, 3), classes=10, depth_multiplier=0.125,
                               classifier_activation=None)
    smoothed = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=[smoothed, smoothed],
                  loss_weights=[1.0, 0.4], jit_compile=False)
    make = make_input_fn("smoke", data_dir=None, split="train", image_size=96,
                         global_batch_size=32, is_training=True)
    def targets(images, ids):
        one_hot = tf.one_hot(ids, 10)
        return images, {"predictions": one_hot, "aux_predictions": one_hot}
    model.fit(make().map(targets), epochs=1, steps_per_epoch=2, verbose=0,
              callbacks=[FirstStep()])
""")


def seconds_to_line(command, marker, cwd):
    """Seconds from starting `command` to the stdout line containing `marker`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO))
    try:
        for line in process.stdout:
            if marker in line:
                return time.perf_counter() - started
        raise RuntimeError(f"{command} ended without printing {marker!r}")
    finally:
        process.kill()
        process.wait()


def time_to_first_step(runs):
    """(ours, keras fit): median seconds from process start to the first finished step."""
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "keras_fit.py")
        with open(script, "w") as file:
            file.write(KERAS_FIT_SCRIPT)
        trainer = [sys.executable, "-m", "trainers.imagenet", "--model_dir", "run",
                   "--export_dir", "exports", "--precision", "float32", "--epochs", "1",
                   "--steps_per_epoch", "2", "--set", "depth_multiplier=0.125",
                   "--set", "log_every_steps=1"]
        times = {"ours": [], "keras_fit": []}
        for index in range(runs):
            for name in (("ours", "keras_fit") if index % 2 == 0 else ("keras_fit", "ours")):
                run_dir = tempfile.mkdtemp(dir=folder)  # a fresh run every time
                if name == "ours":
                    seconds = seconds_to_line(trainer, "step 1/2", run_dir)
                else:
                    seconds = seconds_to_line([sys.executable, script, REPO],
                                              "first step done", run_dir)
                times[name].append(seconds)
                print(f"first step {name}: {seconds:.1f} s", flush=True)
    return statistics.median(times["ours"]), statistics.median(times["keras_fit"])


# ------------------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="auto",
                        help="ours: auto | float32 | mixed_bfloat16 | mixed_float16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model per round")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=299)
    parser.add_argument("--first_step_runs", type=int, default=3)
    args = parser.parse_args()

    data.ensure_smoke_dataset()
    first_ours, first_fit = time_to_first_step(args.first_step_runs)

    single = distribute.make_strategy("cpu")
    mirrored = distribute.make_strategy("mirrored", devices="/cpu:0,/cpu:1")
    policy = distribute.resolve_precision(args.precision, single)
    info = data.dataset_info("smoke", None)
    config = get_config("paper").replace(
        dataset="smoke", image_size=args.image_size, global_batch_size=args.batch_size,
        steps_per_epoch=info.num_train_examples // args.batch_size, ema_momentum=None,
        strategy="cpu").validate()
    print(f"precision auto -> {policy} "
          f"({distribute.precision_reason(args.precision, policy, single)}); "
          f"batch {args.batch_size} at {args.image_size}px; oneDNN "
          f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default (on)')}", flush=True)

    contenders = {f"ours_{policy}": ours(config, policy, single, info),
                  f"keras_fit_{policy}": keras_fit_same_model(config, policy, single, info),
                  f"mirrored2_{policy}": ours(config, policy, mirrored, info)}
    if policy != "float32":
        contenders["ours_float32"] = ours(config, "float32", single, info)
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
        print(f"{name:>24}: {value:6.2f} images/s")
    print(f"time to first step: ours {first_ours:.1f} s, keras fit {first_fit:.1f} s")
    auto = speed[f"ours_{policy}"] / speed["keras_fp32"]
    fp32 = speed.get("ours_float32", speed[f"ours_{policy}"]) / speed["keras_fp32"]
    same = speed[f"ours_{policy}"] / speed[f"keras_fit_{policy}"]
    mirrored2 = speed[f"mirrored2_{policy}"] / speed[f"ours_{policy}"]
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"RESULT vs_keras_fp32_auto={auto:.2f} vs_keras_fp32_float32={fp32:.2f} "
          f"peak_rss_gb={peak_gb:.1f} vs_keras_fit_same_model={same:.3f} "
          f"mirrored2_vs_one_device={mirrored2:.2f} "
          f"time_to_first_step_vs_keras_fit={first_ours / first_fit:.2f}")


if __name__ == "__main__":
    main()
