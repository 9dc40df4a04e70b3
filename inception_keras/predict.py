"""Classify image files: `python -m inception_keras.predict IMAGE... --model PATH [--top_k 5] [--json]
[--benchmark]`.

`--model` is one of
- a SavedModel version folder written by `inception_keras.export` (`saved_models/NAME/3`): its
  `serving_default` signature decodes, preprocesses and classifies, with the class names it was
  exported with;
- a model base folder (`saved_models/NAME`): its highest version, as TF Serving would serve;
- a Keras weights file of a 1000-class ImageNet Inception-v3: Keras' published
  `inception_v3_weights_tf_dim_ordering_tf_kernels.h5`, or a `.weights.h5` saved from
  `build_inception_v3(classes=1000)` (auxiliary head or not). The model is built at 299 x 299
  and images get the evaluation preprocessing (central crop); names are ImageNet's;
- a LiteRT (`.tflite`) or ONNX (`.onnx`) file written by `inception_keras.export --formats`:
  images get the evaluation preprocessing at the file's input size (the SavedModel does the same
  in its graph), class names come from the `labels.txt` beside the file.

IMAGE arguments are image files (JPEG, PNG, GIF, BMP, WebP) or folders, which stand for their
image files (sorted, not recursive). Each file's top-k classes and probabilities are printed,
or with `--json` one JSON document: `{"model": ..., "results": [{"file": ..., "predictions":
[{"class": id, "name": ..., "probability": ...}, ...]}, ...], "errors": [{"file": ...,
"error": ...}]}`.

A file that is missing or not an image gets one line on stderr and the others are still
classified; the exit status is then 1. A bad `--model` or `--top_k` is one `error:` line on
stderr and exit status 2.

`--benchmark` also times classifying the first image alone (batch 1, encoded bytes to top-k:
decoding, preprocessing and the model), `--benchmark_runs` times after two warm-up calls, and
prints the median (in the JSON document: `"benchmark": {...}`).
"""

import argparse
import json
import os
import statistics
import sys
import time

EXIT_FILE_ERRORS = 1
EXIT_USAGE = 2
SAVED_MODEL_FILE = "saved_model.pb"
BATCH_SIZE = 16
DEFAULT_TOP_K = 5
WEIGHTS_IMAGE_SIZE = 299
FILE_SUFFIXES = (".tflite", ".onnx")
DEFAULT_BENCHMARK_RUNS = 20
WARMUP_RUNS = 2


class PredictError(ValueError):
    """A command-line argument this tool cannot use; the message says which and why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parse_args(argv=None):
    parser = _Parser(
        prog="python -m inception_keras.predict",
        description="Print the top classes of image files with an exported model or a weights file.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of them")
    parser.add_argument(
        "--model", required=True,
        help="SavedModel version folder, model base folder (highest version), ImageNet "
        "weights file (.h5 / .weights.h5), or exported .tflite / .onnx file",
    )
    parser.add_argument(
        "--top_k", type=int, default=None,
        help=f"classes shown per image (default {DEFAULT_TOP_K}, or fewer if the export returns fewer)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--benchmark", action="store_true",
                        help="also print the batch-1 latency on the first image (median)")
    parser.add_argument("--benchmark_runs", type=int, default=DEFAULT_BENCHMARK_RUNS,
                        help="timed runs of --benchmark (default %(default)s)")
    return parser.parse_args(argv)


# --- inputs -------------------------------------------------------------------------------------


def expand_images(paths):
    """(image files, [(path, error)]): folders replaced by their sorted image files."""
    from inception_keras.data.folder import IMAGE_EXTENSIONS

    files, errors = [], []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(
                name for name in os.listdir(path)
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
                and os.path.isfile(os.path.join(path, name))
            )
            if not names:
                errors.append((path, f"folder has no image files ({', '.join(IMAGE_EXTENSIONS)})"))
            files += [os.path.join(path, name) for name in names]
        elif os.path.isfile(path):
            files.append(path)
        else:
            errors.append((path, "no such file"))
    return files, errors


def _read_image(path):
    """The file's bytes, or raises ValueError saying why they are not a usable image."""
    import tensorflow as tf

    from inception_keras.data.preprocessing import decode_rgb

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ValueError(f"cannot be read ({error.strerror})") from None
    try:
        decode_rgb(tf.constant(data))
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        raise ValueError("not an image TensorFlow can decode (JPEG, PNG, GIF, BMP, WebP)") from None
    return data


# --- models -------------------------------------------------------------------------------------


class SavedModelClassifier:
    """An export's `serving_default` signature: encoded images -> top-k ids, names, probabilities."""

    def __init__(self, path):
        import tensorflow as tf

        self.path = path
        try:
            loaded = tf.saved_model.load(path)
        except Exception as error:  # any failure to load is a bad --model for this tool
            raise PredictError(
                f"--model {path}: not a loadable SavedModel ({_first_line(error)})"
            ) from None
        signature = loaded.signatures.get("serving_default")
        inputs = signature.structured_input_signature[1] if signature is not None else {}
        outputs = signature.structured_outputs if signature is not None else {}
        if "image_bytes" not in inputs or not {"classes", "class_names", "probabilities"} <= set(outputs):
            raise PredictError(
                f"--model {path}: its serving_default signature does not take image_bytes and "
                "return classes, class_names and probabilities (export it with "
                "python -m inception_keras.export)"
            )
        self._loaded = loaded  # keeps the signature's variables alive
        self._classify = signature
        self.max_top_k = int(outputs["classes"].shape[-1])

    def classify(self, images, top_k):
        import tensorflow as tf

        out = self._classify(image_bytes=tf.constant(images, tf.string))
        ids, names, probabilities = (out[k].numpy() for k in ("classes", "class_names", "probabilities"))
        return [
            [(int(i), n.decode("utf-8"), float(p))
             for i, n, p in zip(ids[row], names[row], probabilities[row])][:top_k]
            for row in range(len(images))
        ]


class WeightsClassifier:
    """A 1000-class ImageNet Inception-v3 built from a Keras weights file, at 299 x 299."""

    def __init__(self, path):
        from inception_keras.models import weights as weights_lib
        from inception_keras.imagenet_classes import imagenet_label_names
        from inception_keras.models.inception_v3 import build_inception_v3, inference_model

        self.path = path
        try:
            weights_lib.count_weighted_layers(path)
            classes = _dense_outputs(path)
        except (OSError, ValueError) as error:
            raise PredictError(f"--model {path}: not a readable Keras weights file ({error})") from None
        if classes != {len(imagenet_label_names())}:
            raise PredictError(
                f"--model {path}: not the weights of a 1000-class ImageNet Inception-v3 (its dense "
                f"layers have {sorted(classes) or 'no'} outputs). For other classes, export a "
                "SavedModel (python -m inception_keras.export) and pass its folder."
            )
        try:
            model = build_inception_v3(include_aux=False, weights=path)
        except ValueError as plain_error:
            try:  # a file saved from a model with the auxiliary head
                model = inference_model(build_inception_v3(include_aux=True, weights=path))
            except ValueError:
                raise PredictError(
                    f"--model {path}: not the weights of a 1000-class ImageNet Inception-v3 "
                    f"({_first_line(plain_error)}). For other classes, export a SavedModel "
                    "(python -m inception_keras.export) and pass its folder."
                ) from None
        self._model = model
        self._names = imagenet_label_names()
        self.max_top_k = len(self._names)

    def classify(self, images, top_k):
        import tensorflow as tf

        from inception_keras.data.preprocessing import preprocess_for_eval

        batch = tf.stack([preprocess_for_eval(tf.constant(b), WEIGHTS_IMAGE_SIZE) for b in images])
        return _top_k(self._model(batch, training=False), self._names, top_k)


class FileClassifier:
    """An exported `.tflite` (LiteRT) or `.onnx` (ONNX Runtime) file, class names from labels.txt.

    The files take the preprocessed image, so the evaluation preprocessing runs here first.
    """

    def __init__(self, path):
        from inception_keras.export.errors import ExportError
        from inception_keras.export.formats.runners import load_runner, read_labels

        self.path = path
        try:
            self._runner = load_runner(path)
        except ExportError as error:  # its runtime is not installed
            raise PredictError(f"--model {path}: {error}") from None
        except Exception as error:  # any failure to load is a bad --model for this tool
            raise PredictError(
                f"--model {path}: not a classifier its runtime can load ({_first_line(error)})"
            ) from None
        self.max_top_k = self._runner.num_classes
        self._names, self.note = read_labels(path), None
        if self._names is None:
            from inception_keras.export.class_names import resolve_class_names

            self._names = resolve_class_names(None, self.max_top_k)
            self.note = (f"note: no labels.txt beside {path}; showing the default names "
                         f"({self._names[0]}, ...)")
        elif len(self._names) != self.max_top_k:
            raise PredictError(
                f"--model {path}: the labels.txt beside it has {len(self._names)} names but the "
                f"model has {self.max_top_k} classes"
            )

    def classify(self, images, top_k):
        import numpy as np
        import tensorflow as tf

        from inception_keras.data.preprocessing import preprocess_for_eval

        size = self._runner.image_size
        batch = np.stack([preprocess_for_eval(tf.constant(b), size).numpy() for b in images])
        return _top_k(self._runner(batch), self._names, top_k)


def _top_k(probabilities, names, top_k):
    """[(id, name, probability)] of each row's `top_k` classes, best first (ties: lower id)."""
    import numpy as np

    results = []
    for row in np.asarray(probabilities, dtype=np.float64):
        best = np.argsort(-row, kind="stable")[:top_k]
        results.append([(int(i), names[i], float(row[i])) for i in best])
    return results


def _dense_outputs(path):
    """Output sizes of the dense kernels (the only 2-D arrays) in a Keras weights file."""
    import h5py

    sizes = set()

    def visit(_, item):
        if isinstance(item, h5py.Dataset) and len(item.shape) == 2:
            sizes.add(int(item.shape[-1]))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return sizes


def load_classifier(path):
    """The classifier `--model PATH` names (see the module docstring), or PredictError."""
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
            return SavedModelClassifier(path)
        from inception_keras.export.versions import existing_versions

        versions = [v for v in existing_versions(path)
                    if os.path.isfile(os.path.join(path, str(v), SAVED_MODEL_FILE))]
        if not versions:
            raise PredictError(
                f"--model {path}: folder holds neither a SavedModel ({SAVED_MODEL_FILE}) nor "
                "numbered version folders with one"
            )
        return SavedModelClassifier(os.path.join(path, str(max(versions))))
    if os.path.isfile(path):
        if path.endswith(FILE_SUFFIXES):
            return FileClassifier(path)
        if not path.endswith(".h5"):
            raise PredictError(
                f"--model {path}: expected a SavedModel folder, a Keras weights file (.h5) or an "
                "exported .tflite / .onnx file"
            )
        return WeightsClassifier(path)
    raise PredictError(f"--model {path}: no such file or folder")


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- command line -------------------------------------------------------------------------------


def classify_files(classifier, files, top_k):
    """(results [(file, [(id, name, probability)])], errors [(file, reason)]) in file order."""
    readable, errors = [], []
    for path in files:
        try:
            readable.append((path, _read_image(path)))
        except ValueError as error:
            errors.append((path, str(error)))
    results = []
    for start in range(0, len(readable), BATCH_SIZE):
        chunk = readable[start : start + BATCH_SIZE]
        predictions = classifier.classify([data for _, data in chunk], top_k)
        results += [(path, top) for (path, _), top in zip(chunk, predictions)]
    return results, errors


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.top_k is not None and args.top_k < 1:
            raise PredictError(f"--top_k must be a positive integer; received {args.top_k}")
        if args.benchmark_runs < 1:
            raise PredictError(
                f"--benchmark_runs must be a positive integer; received {args.benchmark_runs}")
        files, errors = expand_images(args.images)
        classifier = load_classifier(args.model)
        all_classes = isinstance(classifier, (WeightsClassifier, FileClassifier))
        if all_classes and (args.top_k or 0) > classifier.max_top_k:
            raise PredictError(
                f"--top_k {args.top_k} is more than the model's {classifier.max_top_k} classes"
            )
    except PredictError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    top_k = min(DEFAULT_TOP_K, classifier.max_top_k) if args.top_k is None else args.top_k
    if top_k > classifier.max_top_k:
        print(f"note: the SavedModel returns its top {classifier.max_top_k} classes (its export's "
              f"top_k); showing {classifier.max_top_k}", file=sys.stderr)
        top_k = classifier.max_top_k
    if getattr(classifier, "note", None):
        print(classifier.note, file=sys.stderr)
    results, file_errors = classify_files(classifier, files, top_k)
    errors += file_errors
    for path, reason in errors:
        print(f"{path}: {reason}", file=sys.stderr)
    timing = benchmark(classifier, results[0][0], args.benchmark_runs) \
        if args.benchmark and results else None
    if args.json:
        document = {
            "model": classifier.path,
            "results": [
                {"file": path, "predictions": [
                    {"class": i, "name": name, "probability": p} for i, name, p in top]}
                for path, top in results
            ],
            "errors": [{"file": path, "error": reason} for path, reason in errors],
        }
        if timing:
            document["benchmark"] = timing
        print(json.dumps(document, indent=2))
    else:
        for path, top in results:
            print(path)
            for class_id, name, probability in top:
                print(f"  {probability:.4f}  {name} ({class_id})")
        if timing:
            print(f"benchmark: batch 1, median {timing['median_ms']:.2f} ms over "
                  f"{timing['runs']} runs (min {timing['min_ms']:.2f} ms), {timing['file']}: "
                  "decode, preprocess, model, top-k")
    return EXIT_FILE_ERRORS if errors else 0


def benchmark(classifier, path, runs):
    """Batch-1 latency of classifying the file at `path`: {file, runs, median_ms, min_ms}."""
    image = _read_image(path)
    for _ in range(WARMUP_RUNS):
        classifier.classify([image], 1)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.classify([image], 1)
        times.append((time.perf_counter() - start) * 1000)
    return {"file": path, "batch": 1, "runs": runs, "median_ms": statistics.median(times),
            "min_ms": min(times)}


if __name__ == "__main__":
    sys.exit(main())
