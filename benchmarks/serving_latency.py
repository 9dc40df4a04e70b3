"""Latency of the exported `serving_default` on JPEG bytes vs Keras' InceptionV3 on tensors.

Ours: `build_inception_v3` (random weights) exported with `export_saved_model`, reloaded with
`tf.saved_model.load`, called on a batch of encoded JPEGs (decode, crop and resize included).
Keras: `keras.applications.InceptionV3(weights=None).predict_on_batch` on the same images
already decoded and preprocessed. Same process, same dtype policy; rounds alternate between
the two (and which goes first) so machine noise hits both alike.

    python benchmarks/serving_latency.py [--rounds_b32 6] [--rounds_b1 40]

The last line is `RESULT speed_vs_keras_b32=<keras p50 / ours p50> p50_b1_ms=<n> p99_b1_ms=<n>`
(ours at batch 1). With few rounds, p99 is close to the slowest round.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from inception_keras import build_inception_v3
from inception_keras.data.preprocessing import preprocess_for_eval
from inception_keras.export import export_saved_model

IMAGE_SIZE = 299


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds_b32", type=int, default=6, help="timed batches of 32 per model")
    parser.add_argument("--rounds_b1", type=int, default=40, help="timed batches of 1 per model")
    parser.add_argument("--dtype_policy", default="float32", help="e.g. mixed_bfloat16")
    return parser.parse_args()


def photo_like_jpegs(count, seed=0):
    """JPEGs of smooth random scenes at typical ImageNet sizes (noise would decode slower)."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        height, width = int(rng.integers(330, 500)), int(rng.integers(375, 500))
        coarse = rng.uniform(0, 255, (1, 12, 12, 3)).astype(np.float32)
        smooth = tf.image.resize(coarse, [height, width], method="bicubic")[0]
        grain = rng.normal(0, 6, (height, width, 3))
        pixels = tf.cast(tf.clip_by_value(smooth + grain, 0, 255), tf.uint8)
        images.append(tf.io.encode_jpeg(pixels, quality=90).numpy())
    return images


def exported_serving_fn(export_dir):
    model = build_inception_v3(weights=None)
    path = export_saved_model(model, export_dir)
    return tf.saved_model.load(path).signatures["serving_default"]


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(rounds, ours, theirs):
    """Per-call seconds of each, alternating which one runs first every round."""
    times = {"ours": [], "keras": []}
    for round_index in range(rounds):
        pair = [("ours", ours), ("keras", theirs)]
        for name, fn in pair if round_index % 2 == 0 else pair[::-1]:
            times[name].append(timed(fn))
    return {name: np.array(values) for name, values in times.items()}


def report(batch, times):
    for name, values in times.items():
        p50, p99 = np.percentile(values * 1000, [50, 99])
        print(f"batch {batch:2d}  {name:5s}  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  "
              f"({len(values)} calls, {batch / np.median(values):6.1f} images/s)")


def main():
    args = parse_args()
    keras.config.set_dtype_policy(args.dtype_policy)
    keras.utils.set_random_seed(0)
    jpegs = photo_like_jpegs(32)
    with tempfile.TemporaryDirectory() as export_dir:
        serve = exported_serving_fn(export_dir)
    keras_model = keras.applications.InceptionV3(weights=None)
    pixels = tf.stack([preprocess_for_eval(image, IMAGE_SIZE) for image in jpegs])

    results = {}
    for batch, rounds in ((32, args.rounds_b32), (1, args.rounds_b1)):
        image_bytes = tf.constant(jpegs[:batch])
        decoded = pixels[:batch]
        ours = lambda: serve(image_bytes=image_bytes)["classes"].numpy()  # noqa: E731
        theirs = lambda: keras_model.predict_on_batch(decoded)  # noqa: E731
        for _ in range(2):  # warm up: tracing, allocation, oneDNN primitive caches
            ours(), theirs()
        results[batch] = interleaved(rounds, ours, theirs)
        report(batch, results[batch])

    speed = np.median(results[32]["keras"]) / np.median(results[32]["ours"])
    p50_b1, p99_b1 = np.percentile(results[1]["ours"] * 1000, [50, 99])
    print(f"policy {args.dtype_policy}, {os.cpu_count()} CPUs, TF {tf.__version__}, "
          f"Keras {keras.__version__}")
    print(f"RESULT speed_vs_keras_b32={speed:.3f} p50_b1_ms={p50_b1:.1f} p99_b1_ms={p99_b1:.1f}")


if __name__ == "__main__":
    main()
