"""`python -m inception_keras.export --model PATH --export_dir saved_models [--formats ...]`.

`--model` is a `.keras` file or a training run's model_dir (its newest checkpoint, with its EMA
weights when it kept them). `--formats` (default `savedmodel`) adds LiteRT and ONNX files, which
need images: the run's own dataset, or `--dataset`/`--data_dir` for a `.keras` file.
"""

import argparse
import sys

from inception_keras.export.class_names import read_class_names
from inception_keras.export.errors import ExportError
from inception_keras.export.formats import (
    DEFAULT_AGREEMENT_EXAMPLES,
    DEFAULT_CALIBRATION_EXAMPLES,
    DEFAULT_FORMATS,
    FLOAT_MIN_AGREEMENT,
    FORMATS,
    INT8_MIN_AGREEMENT,
    dataset_format_data,
    export_all,
    file_formats,
    parse_formats,
    require_runtimes,
)
from inception_keras.export.formats.data import check_counts
from inception_keras.export.formats.names import agreement_bounds
from inception_keras.training.run_model import is_run_dir, load_run_model  # the CLI only


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv=None):
    parser = _Parser(
        prog="python -m inception_keras.export",
        description="Export a .keras classifier or a training run's newest checkpoint as a TF "
        "Serving SavedModel version, and as LiteRT / ONNX files with --formats.",
    )
    parser.add_argument("--model", required=True,
                        help="the .keras file to export, or a training run's model_dir")
    parser.add_argument("--export_dir", default="saved_models", help="folder of model base paths")
    parser.add_argument("--model_name", default="inception_v3", help="model base path name")
    parser.add_argument("--version", type=int, help="version to write (default: next free)")
    parser.add_argument("--top_k", type=int, default=5, help="classes returned per image")
    parser.add_argument(
        "--class_names",
        help="text file with one class name per line, or the training image folder",
    )
    parser.add_argument(
        "--formats", default=",".join(DEFAULT_FORMATS),
        help=f"comma-separated, from {', '.join(FORMATS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--dataset",
        help="dataset of the int8 calibration (train split) and agreement (validation split) "
        "images, as the trainer names it (smoke, folder:PATH, tfds:NAME, imagenet_tfrecord); "
        "default for a run: the run's",
    )
    parser.add_argument("--data_dir", help="where --dataset lives (default for a run: the run's)")
    parser.add_argument("--int8_io", action="store_true",
                        help="litert_int8 takes and returns int8 instead of float32")
    parser.add_argument("--calibration_examples", type=int, default=DEFAULT_CALIBRATION_EXAMPLES,
                        help="training images litert_int8 is calibrated on (default %(default)s)")
    parser.add_argument("--agreement_examples", type=int, default=DEFAULT_AGREEMENT_EXAMPLES,
                        help="validation images each file is checked on (default %(default)s, "
                        "or all if fewer)")
    parser.add_argument("--min_agreement_float", type=float, default=FLOAT_MIN_AGREEMENT,
                        help="least top-1 agreement of litert, litert_float16 and onnx with the "
                        "Keras model for the files to be published (default %(default)s)")
    parser.add_argument("--min_agreement_int8", type=float, default=INT8_MIN_AGREEMENT,
                        help="the same for litert_int8 (default %(default)s)")
    return parser.parse_args(argv)


def load_keras_model(path):
    """The model in a `.keras` file, or `ExportError`."""
    import tensorflow as tf

    if not path.endswith(".keras") or not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise ExportError(f"--model must be an existing .keras file or a training run's "
                          f"model_dir; received {path!r}.")
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # any loading failure is a bad input file for this CLI
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"could not load {path}: {first_line}") from None


def load_source(args):
    """(model, class names or None, dataset, data_dir, image size or None, card source)."""
    if is_run_dir(args.model):
        run = load_run_model(args.model)
        dataset = args.dataset or run.config.dataset
        data_dir = args.data_dir if args.dataset or args.data_dir else run.config.data_dir
        return run.model, run.class_names, dataset, data_dir, run.config.image_size, run.source
    model = load_keras_model(args.model)
    names = None
    if args.dataset:
        from inception_keras.data import DataError, dataset_info

        try:
            names = dataset_info(args.dataset, args.data_dir).class_names
        except DataError as error:
            raise ExportError(f"--dataset {args.dataset}: {error}") from None
    return model, names, args.dataset, args.data_dir, None, {"keras_file": args.model}


def main(argv=None):
    args = parse_args(argv)
    try:
        paths = export(args)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(paths))
    return 0


def export(args):
    """Runs the export `args` ask for; returns the folders written (SavedModel last)."""
    wanted = parse_formats(args.formats)
    check_counts(calibration_examples=args.calibration_examples,
                 agreement_examples=args.agreement_examples)
    bounds = agreement_bounds(args.min_agreement_float, args.min_agreement_int8)
    require_runtimes(wanted)  # before any work
    if file_formats(wanted) and not args.dataset and not is_run_dir(args.model):
        raise ExportError(
            f"--formats {','.join(f.name for f in file_formats(wanted))}: file formats need "
            "images (int8 calibration, agreement check); pass --dataset (and --data_dir) of the "
            "model's training data, or a training run's model_dir as --model."
        )
    model, names, dataset, data_dir, image_size, source = load_source(args)
    if args.class_names:
        names = read_class_names(args.class_names)
    image_size = image_size or _input_size(model)
    written = export_all(
        model, args.export_dir, model_name=args.model_name, formats=wanted,
        version=args.version, class_names=names, image_size=image_size, top_k=args.top_k,
        data=lambda: dataset_format_data(dataset, data_dir, image_size,
                                         calibration_examples=args.calibration_examples,
                                         agreement_examples=args.agreement_examples),
        source=source, int8_io=args.int8_io, **bounds)
    return [written[kind] for kind in ("formats", "savedmodel") if kind in written]


def _input_size(model):
    shape = model.inputs[0].shape
    return int(shape[1]) if shape[1] is not None else None


if __name__ == "__main__":
    sys.exit(main())
