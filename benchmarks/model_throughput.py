"""Forward and train-step throughput of our canonical Inception-v3 vs keras.applications.InceptionV3.

Same process, same batch (32) and size (299), float32 and mixed_bfloat16. Rounds alternate
the order of the models, and each ratio is the median of per-round ratios, so machine noise
hits both sides alike.
Our model is built with `include_aux=False` (the network keras.applications builds); the
two-output training model is timed too, for information.

    python benchmarks/model_throughput.py [--rounds 3] [--batch 32] [--size 299]

Last line: RESULT train_fp32=<ratio> train_bf16=<ratio> infer_fp32=<ratio> infer_bf16=<ratio>
(ratio = our images/s / keras images/s; >= 0.97 is the bar).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from inception_keras import build_inception_v3
from inception_keras.imagenet_classes import IMAGENET_NUM_CLASSES
from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS


def build_pair(precision, size):
    keras.config.set_dtype_policy(precision)
    ours = build_inception_v3(include_aux=False, input_shape=(size, size, 3))
    theirs = keras.applications.InceptionV3(weights=None, input_shape=(size, size, 3))
    with_aux = build_inception_v3(input_shape=(size, size, 3))
    keras.config.set_dtype_policy("float32")
    for model in (ours, theirs, with_aux):
        loss = {PREDICTIONS: "categorical_crossentropy", AUX_PREDICTIONS: "categorical_crossentropy"}
        model.compile(
            optimizer=keras.optimizers.RMSprop(0.045, rho=0.9, momentum=0.9, epsilon=1.0),
            loss=loss if model is with_aux else "categorical_crossentropy",
        )
    return {"ours": ours, "keras": theirs, "ours_with_aux": with_aux}


def step_seconds(model, mode, x, y):
    targets = {PREDICTIONS: y, AUX_PREDICTIONS: y} if len(model.outputs) == 2 else y
    start = time.perf_counter()
    if mode == "train":
        model.train_on_batch(x, targets)
    else:
        model.predict_on_batch(x)
    return time.perf_counter() - start


def measure(models, mode, x, y, rounds):
    """Images/s of each model and, per round, our speed over Keras' (the median is the ratio)."""
    for model in models.values():  # compile and warm up
        step_seconds(model, mode, x, y)
        step_seconds(model, mode, x, y)
    times = {name: [] for name in models}
    for index in range(rounds):
        names = list(models) if index % 2 == 0 else list(reversed(models))  # no order bias
        for name in names:
            times[name].append(step_seconds(models[name], mode, x, y))
    speed = {name: len(x) / statistics.median(t) for name, t in times.items()}
    ratio = statistics.median(k / o for k, o in zip(times["keras"], times["ours"]))
    return speed, ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=299)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, IMAGENET_NUM_CLASSES, args.batch)
    y = keras.utils.to_categorical(labels, IMAGENET_NUM_CLASSES)
    ratios = {}
    for precision, tag in (("float32", "fp32"), ("mixed_bfloat16", "bf16")):
        models = build_pair(precision, args.size)
        for mode in ("infer", "train"):
            speed, ratios[f"{mode}_{tag}"] = measure(models, mode, x, y, args.rounds)
            print(
                f"{mode:5s} {precision:15s} images/s: ours {speed['ours']:.1f}  keras "
                f"{speed['keras']:.1f}  ours+aux {speed['ours_with_aux']:.1f}  "
                f"ratio {ratios[f'{mode}_{tag}']:.3f}",
                flush=True,
            )
        del models
        keras.backend.clear_session()
    keys = ("train_fp32", "train_bf16", "infer_fp32", "infer_bf16")
    print("RESULT " + " ".join(f"{key}={ratios[key]:.3f}" for key in keys))


if __name__ == "__main__":
    main()
