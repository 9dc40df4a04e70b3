"""CPU inference of one Inception-v3 in each export format: SavedModel vs LiteRT vs ONNX Runtime.

The full-size network (299x299, 1000 classes, random weights: `build_inception_v3(
include_aux=False)`) is exported the way `python -m inception_keras.export --formats` does it:
- SavedModel (`export_saved_model`), called through its float-pixel signature `predict_images`
  (no JPEG decoding timed), reloaded with `tf.saved_model.load`;
- LiteRT float32, float16 (weights) and int8 (full-integer, float32 input/output, calibrated on
  photo-like random images), run with ai-edge-litert's `Interpreter` (XNNPACK, its default CPU
  delegate);
- ONNX (Keras' `model.export(format="onnx")`, opset 17), run with ONNX Runtime's CPU provider.

Every runtime gets the same number of threads, set explicitly (TF intra-op threads, the
interpreter's `num_threads`, ORT's `intra_op_num_threads`; one inter-op thread each). Batch-1
latency is the median of `--runs_b1` calls, batch-32 throughput 32 / the median of `--runs_b32`
calls, after warm-up; rounds alternate over the formats so machine noise hits all alike.

    python benchmarks/inference_formats.py [--threads 2] [--runs_b1 30] [--runs_b32 5]

The last line is `RESULT onnx_vs_savedmodel_b1=... litert_int8_vs_savedmodel_b1=...
onnx_vs_savedmodel_b32=... ...`: ratios of the SavedModel's time to the format's (> 1: faster
than the SavedModel), the fastest format at batch 1 and the file sizes in MB.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

IMAGE_SIZE = 299
FORMATS = ("savedmodel", "litert", "litert_float16", "litert_int8", "onnx")
FILE_NAMES = {"litert": "model.tflite", "litert_float16": "model_float16.tflite",
              "litert_int8": "model_int8.tflite"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads of every runtime (default: the CPU count)")
    parser.add_argument("--runs_b1", type=int, default=30, help="timed batch-1 calls per format")
    parser.add_argument("--runs_b32", type=int, default=5, help="timed batch-32 calls per format")
    parser.add_argument("--calibration_images", type=int, default=32,
                        help="photo-like random images the int8 file is calibrated on")
    return parser.parse_args()


def photo_like_images(count, seed=0):
    """Float32 [count, S, S, 3] in [-1, 1]: smooth random scenes with grain (not flat noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count, 10, 10, 3)).astype(np.float32)
    smooth = tf.image.resize(coarse, [IMAGE_SIZE, IMAGE_SIZE], method="bicubic").numpy()
    pixels = np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255)
    return (pixels / 127.5 - 1.0).astype(np.float32)


def folder_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def export_all(model, folder, calibration):
    """{format: (callable images in [-1, 1] -> probabilities, path)} and conversion seconds."""
    from inception_keras.export import export_saved_model
    from inception_keras.export.formats.deploy_model import deploy_model
    from inception_keras.export.formats.litert import convert_litert, write_converter_source
    from inception_keras.export.formats.onnx_format import convert_onnx

    seconds = {}
    start = time.perf_counter()
    saved_model = export_saved_model(model, folder, model_name="inception_v3")
    seconds["savedmodel"] = time.perf_counter() - start
    network, _ = deploy_model(model)
    source = write_converter_source(network, os.path.join(folder, "converter_source"))
    paths = {"savedmodel": saved_model}
    for name, file_name in FILE_NAMES.items():
        start = time.perf_counter()
        content = convert_litert(source, name, calibration_images=lambda: [calibration])
        paths[name] = os.path.join(folder, file_name)
        with open(paths[name], "wb") as f:
            f.write(content)
        seconds[name] = time.perf_counter() - start
    start = time.perf_counter()
    paths["onnx"] = convert_onnx(network, os.path.join(folder, "model.onnx"))
    seconds["onnx"] = time.perf_counter() - start
    return paths, seconds


def load_runners(paths, threads):
    from inception_keras.export.formats.litert import LiteRTRunner
    from inception_keras.export.formats.onnx_format import OnnxRunner

    predict_images = tf.saved_model.load(paths["savedmodel"]).signatures["predict_images"]

    def savedmodel(pixels):
        return predict_images(images=pixels)["probabilities"].numpy()

    return {
        "savedmodel": savedmodel,
        **{name: LiteRTRunner(paths[name], num_threads=threads) for name in FILE_NAMES},
        "onnx": OnnxRunner(paths["onnx"], num_threads=threads),
    }


def runner_inputs(images):
    """{format: its input of `images`}: the SavedModel signature takes pixels in 0..255 (and
    scales them itself), the files the preprocessed images in [-1, 1]."""
    inputs = {name: images for name in FORMATS}
    inputs["savedmodel"] = tf.constant((images + 1.0) * 127.5)
    return inputs


def interleaved(runners, images, runs):
    """{format: median seconds per call}, alternating the order of the formats every round."""
    inputs = runner_inputs(images)
    for name, runner in runners.items():  # warm up: allocation, kernel selection, caches
        runner(inputs[name]), runner(inputs[name])
    times = {name: [] for name in runners}
    order = list(runners)
    for round_index in range(runs):
        for name in order if round_index % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            runners[name](inputs[name])
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def main():
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)  # before any TF op
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from inception_keras import build_inception_v3

    keras.utils.set_random_seed(0)
    model = build_inception_v3(include_aux=False, weights=None)
    images = photo_like_images(32 + args.calibration_images)
    batch, calibration = images[:32], images[32:]
    with tempfile.TemporaryDirectory() as folder:
        paths, seconds = export_all(model, folder, calibration)
        sizes = {name: folder_size(path) / 1e6 for name, path in paths.items()}
        sizes["savedmodel"] -= folder_size(os.path.join(paths["savedmodel"], "assets.extra")) / 1e6
        runners = load_runners(paths, args.threads)
        b1 = interleaved(runners, batch[:1], args.runs_b1)
        b32 = interleaved(runners, batch, args.runs_b32)
        inputs = runner_inputs(batch)
        reference = runners["savedmodel"](inputs["savedmodel"]).argmax(-1)
        top1 = {name: float((runner(inputs[name]).argmax(-1) == reference).mean())
                for name, runner in runners.items()}

    print(f"{'format':14s} {'size MB':>8s} {'convert s':>9s} {'b1 ms':>8s} {'b32 img/s':>9s} "
          f"{'b1 x SM':>7s} {'b32 x SM':>8s} {'top-1 = SM':>10s}")
    for name in FORMATS:
        print(f"{name:14s} {sizes[name]:8.1f} {seconds[name]:9.1f} {b1[name] * 1000:8.1f} "
              f"{32 / b32[name]:9.1f} {b1['savedmodel'] / b1[name]:7.2f} "
              f"{b32['savedmodel'] / b32[name]:8.2f} {top1[name]:10.3f}")
    fastest = min(FORMATS, key=b1.get)
    print(f"{args.threads} threads, {os.cpu_count()} CPUs, TF {tf.__version__}, Keras "
          f"{keras.__version__}; random weights, so top-1 agreement here says little (the "
          "export's card measures it on real images); SavedModel size without warm-up records")
    ratios = {f"{name}_vs_savedmodel_{tag}": times["savedmodel"] / times[name]
              for tag, times in (("b1", b1), ("b32", b32)) for name in FORMATS[1:]}
    keys = ["onnx_vs_savedmodel_b1", "litert_int8_vs_savedmodel_b1", "onnx_vs_savedmodel_b32",
            "litert_vs_savedmodel_b1", "litert_float16_vs_savedmodel_b1",
            "litert_vs_savedmodel_b32", "litert_int8_vs_savedmodel_b32"]
    result = " ".join(f"{key}={ratios[key]:.2f}" for key in keys)
    result += (f" fastest_b1={fastest} fastest_vs_savedmodel_b1={b1['savedmodel'] / b1[fastest]:.2f}"
               f" savedmodel_b1_ms={b1['savedmodel'] * 1000:.1f} "
               + " ".join(f"{name}_mb={sizes[name]:.1f}" for name in FORMATS))
    print(f"RESULT {result}")


if __name__ == "__main__":
    main()
