"""`export_formats`: LiteRT and ONNX files of a Keras classifier, scored, then published.

Layout, beside the SavedModel versions but outside TF Serving's model base path:

    <export_dir>/<model_name>/<version>/            the SavedModel (export_saved_model)
    <export_dir>/<model_name>_formats/<version>/    model.tflite, model_float16.tflite,
                                                    model_int8.tflite, model.onnx (those asked
                                                    for), labels.txt, card.json

A version folder is written under a hidden temporary name and renamed into place only once
every file has been converted and has passed its agreement bound (`names.FileFormat`), so a
version is complete or absent, never half-written or below its bound.
"""

import contextlib
import os
import tempfile

import tensorflow as tf

from inception_keras.export.errors import ExportError
from inception_keras.export.saved_model import export_saved_model
from inception_keras.export.formats import card as card_lib
from inception_keras.export.formats.agreement import below_bound, measure_agreement
from inception_keras.export.formats.deploy_model import deploy_model, probabilities_function
from inception_keras.export.formats.litert import LiteRTRunner, convert_litert, \
    write_converter_source
from inception_keras.export.formats.names import (
    FLOAT_MIN_AGREEMENT, INT8_MIN_AGREEMENT, LITERT_INT8, ONNX, SAVEDMODEL, agreement_bounds,
    file_formats, parse_formats)
from inception_keras.export.formats.onnx_format import OnnxRunner, convert_onnx, file_opset
from inception_keras.export.formats.runtimes import package_versions, require_runtimes
from inception_keras.export.versions import (
    check_new_version, model_base_dir, next_version, publish, reserve_temp_dir)

FORMATS_SUFFIX = "_formats"


def formats_base_dir(export_dir, model_name):
    """`<export_dir>/<model_name>_formats`, created; ExportError for a name or place it can't use."""
    return model_base_dir(export_dir, f"{model_name}{FORMATS_SUFFIX}")


def export_all(model, export_dir="saved_models", *, model_name="inception_v3", formats,
               version=None, class_names=None, image_size=None, top_k=5, data=None, source=None,
               int8_io=False, min_agreement_float=FLOAT_MIN_AGREEMENT,
               min_agreement_int8=INT8_MIN_AGREEMENT, log=print):
    """Every format of `formats` under ONE version number: the file formats first (their
    agreement bound is what most often refuses an export), then the SavedModel; returns the
    folders written ({format kind: path}: "formats" and/or "savedmodel").

    `data`: a FormatData, or a callable returning one (built only when a file format needs it).
    `version`: None takes the next number free in every base folder written to. The trainer's
    export and `python -m inception_keras.export` both go through here.
    """
    wanted = parse_formats(formats)
    require_runtimes(wanted)
    bounds = agreement_bounds(min_agreement_float, min_agreement_int8)
    files = file_formats(wanted)
    bases = ([formats_base_dir(export_dir, model_name)] if files else []) + (
        [model_base_dir(export_dir, model_name)] if SAVEDMODEL in wanted else [])
    if version is None:
        version = max(next_version(base) for base in bases)
    else:
        for base in bases:
            check_new_version(base, version)
    written = {}
    if files:
        data = data() if callable(data) else data
        written["formats"], _ = export_formats(
            model, export_dir, model_name=model_name, version=version, formats=wanted,
            class_names=class_names, image_size=image_size, data=data, source=source,
            int8_io=int8_io, log=log, **bounds)
    if SAVEDMODEL in wanted:
        written["savedmodel"] = export_saved_model(
            model, export_dir, model_name=model_name, version=version, class_names=class_names,
            top_k=top_k, image_size=image_size)
    return written


def export_formats(model, export_dir="saved_models", *, model_name="inception_v3", version=None,
                   formats, class_names=None, image_size=None, data=None, source=None,
                   int8_io=False, min_agreement_float=FLOAT_MIN_AGREEMENT,
                   min_agreement_int8=INT8_MIN_AGREEMENT, log=print):
    """Writes the file formats among `formats` and returns (version folder, card dict).

    Args:
        model: the Keras classifier the SavedModel is exported from (two-output training model or
            single-output, any dtype policy); its current weights are exported (swap EMA in
            first). The files are converted from a float32, single-output copy.
        export_dir: the folder of the model base paths; files go to
            `<export_dir>/<model_name>_formats/<version>/`.
        model_name: as for `export_saved_model`.
        version: the SavedModel version just written (so both carry the same number), or None
            for the next free one under `<model_name>_formats`. Never overwritten.
        formats: names or "a,b" from `FORMATS`; `savedmodel` is ignored here (see
            `export_saved_model`). With no other format, nothing is done: (None, None).
        class_names: one per class, written to labels.txt (default as `export_saved_model`).
        image_size: the square input side; default the model's.
        data: a `FormatData` (`dataset_format_data`, `array_format_data`): int8 calibration and
            the agreement images. Required by every file format.
        source: facts for the card, e.g. {"checkpoint": path, "step": 1000} or {"keras_file": p}.
        int8_io: `litert_int8` takes and returns int8 instead of float32.
        min_agreement_float, min_agreement_int8: the least top-1 agreement with the Keras model
            of the float files and of the int8 file for the version to be published.
        log: called with each line of the agreement table.

    Raises:
        ExportError: a package is missing, an argument is unusable, or a file agrees with the
            Keras model less than its bound (`min_agreement_float`/`_int8`); nothing is
            published then.
    """
    files = file_formats(formats)
    if not files:
        return None, None
    require_runtimes(formats)
    bounds = agreement_bounds(min_agreement_float, min_agreement_int8)
    if data is None:
        raise ExportError(
            f"export formats {', '.join(f.name for f in files)} need images (int8 calibration "
            "and the agreement check): pass data (dataset_format_data), or --dataset/--data_dir."
        )
    network, spec = deploy_model(model, image_size=image_size, class_names=class_names)
    base = formats_base_dir(export_dir, model_name)
    version = next_version(base) if version is None else check_new_version(base, version)
    with reserve_temp_dir(base) as temp_dir:
        converted, calibration_images = _convert(network, files, temp_dir, data, int8_io)
        runners = {name: _runner(os.path.join(temp_dir, name)) for name in converted}
        agreements = measure_agreement(_keras_probabilities(network), runners,
                                       data.agreement_batches())
        card = card_lib.build_card(
            model_name=model_name, version=version, image_size=spec.image_size,
            class_names=spec.class_names, source=source,
            data={**data.description, "calibration_images": calibration_images},
            files={name: _file_facts(temp_dir, name, fmt, runners[name], bounds[fmt.bound_key])
                   for name, fmt in converted.items()},
            agreements=agreements, packages=package_versions(formats),
            onnx_opset=_onnx_opset(temp_dir, converted),
        )
        for line in card_lib.agreement_table(card):
            log(line)
        _check_bounds(agreements, converted, bounds, base)
        card_lib.write_card(temp_dir, card, spec.class_names)
        return publish(temp_dir, base, version), card


def _convert(network, files, folder, data, int8_io):
    """Writes each file into `folder`: ({file name: FileFormat}, calibration images used)."""
    converted, calibrated = {}, _Counter(data.calibration_batches)
    litert_files = [f for f in files if f.name != ONNX]
    if litert_files:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".converter-") as source:
            write_converter_source(network, source)
            for fmt in litert_files:
                with _converting(fmt):
                    content = convert_litert(
                        source, fmt.name, int8_io=int8_io,
                        calibration_images=calibrated if fmt.name == LITERT_INT8 else None,
                    )
                with open(os.path.join(folder, fmt.file_name), "wb") as f:
                    f.write(content)
                converted[fmt.file_name] = fmt
    for fmt in files:
        if fmt.name == ONNX:
            with _converting(fmt):
                convert_onnx(network, os.path.join(folder, fmt.file_name))
            converted[fmt.file_name] = fmt
    if any(f.name == LITERT_INT8 for f in files) and not calibrated.images:
        raise ExportError("litert_int8: the calibration data holds no images.")
    return converted, calibrated.images  # in FORMATS order: LiteRT files, then ONNX


@contextlib.contextmanager
def _converting(fmt):
    """Turns a converter's failure (e.g. an op it cannot convert) into one ExportError line."""
    try:
        yield
    except ExportError:
        raise
    except Exception as error:  # converters raise many kinds; the cause stays chained
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        raise ExportError(f"converting to {fmt.name} failed: {first_line}") from error


class _Counter:
    """Counts the images a batches callable yields (the converter consumes them)."""

    def __init__(self, batches):
        self._batches, self.images = batches, 0

    def __call__(self):
        for batch in self._batches():
            self.images += len(batch)
            yield batch


def _onnx_opset(folder, converted):
    """The opset the ONNX file declares (ONNX_OPSET unless the converter changed it), or None."""
    names = [name for name, fmt in converted.items() if fmt.name == ONNX]
    return file_opset(os.path.join(folder, names[0])) if names else None


def _runner(path):
    return OnnxRunner(path) if path.endswith(".onnx") else LiteRTRunner(path)


def _keras_probabilities(network):
    probabilities = probabilities_function(network)
    return lambda images: probabilities(tf.constant(images))["probabilities"].numpy()


def _file_facts(folder, name, fmt, runner, bound):
    facts = {
        "format": fmt.name,
        "bytes": os.path.getsize(os.path.join(folder, name)),
        "weights": fmt.weights,
        "input_dtype": runner.input_dtype,
        "output_dtype": runner.output_dtype,
        "min_top1_agreement": bound,
    }
    for key in ("input_quantization", "output_quantization"):
        quantization = getattr(runner, key, None)
        if quantization is not None:
            facts[key] = {"scale": quantization[0], "zero_point": quantization[1]}
    return facts


def _check_bounds(agreements, converted, bounds, base):
    failures = below_bound(agreements, {name: bounds[fmt.bound_key]
                                        for name, fmt in converted.items()})
    if failures:
        images = next(iter(agreements.values())).images
        what = "; ".join(f"{converted[name].name} ({name}) agrees on {value:.2%}, below "
                         f"{converted[name].bound_key} {bound:.1%}"
                         for name, value, bound in failures)
        keys = sorted({converted[name].bound_key for name, _, _ in failures})
        lower = " / ".join(f"--{key} X (export) or --set {key}=X (trainer)" for key in keys)
        raise ExportError(
            f"{what} of the top-1 predictions of the Keras model on {images} images; nothing "
            f"was published in {base}. Calibrate int8 on more images, lower the bound with "
            f"{lower}, or leave that format out."
        )
