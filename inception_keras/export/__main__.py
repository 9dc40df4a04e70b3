"""`python -m inception_keras.export --model PATH.keras --export_dir saved_models [...]`."""

import argparse
import os
import sys

from inception_keras.export.class_names import read_class_names
from inception_keras.export.errors import ExportError
from inception_keras.export.saved_model import export_saved_model


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv=None):
    parser = _Parser(
        prog="python -m inception_keras.export",
        description="Export a .keras classifier as a TF Serving SavedModel version.",
    )
    parser.add_argument("--model", required=True, help="the .keras file to export")
    parser.add_argument("--export_dir", default="saved_models", help="folder of model base paths")
    parser.add_argument("--model_name", default="inception_v3", help="model base path name")
    parser.add_argument("--version", type=int, help="version to write (default: next free)")
    parser.add_argument("--top_k", type=int, default=5, help="classes returned per image")
    parser.add_argument(
        "--class_names",
        help="text file with one class name per line, or the training image folder",
    )
    return parser.parse_args(argv)


def load_keras_model(path):
    """The model in a `.keras` file, or `ExportError`."""
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise ExportError(f"--model must be an existing .keras file; received {path!r}.")
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # any loading failure is a bad input file for this CLI
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"could not load {path}: {first_line}") from None


def main(argv=None):
    args = parse_args(argv)
    try:
        names = read_class_names(args.class_names) if args.class_names else None
        model = load_keras_model(args.model)
        path = export_saved_model(
            model,
            args.export_dir,
            model_name=args.model_name,
            version=args.version,
            class_names=names,
            top_k=args.top_k,
        )
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
