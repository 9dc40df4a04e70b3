"""`export_saved_model`: a Keras classifier -> `<export_dir>/<model_name>/<version>/` for TF Serving."""

from inception_keras.export.errors import ExportError
from inception_keras.export.signatures import build_archive
from inception_keras.export.spec import serving_spec
from inception_keras.export.versions import (
    check_new_version,
    model_base_dir,
    next_version,
    publish,
    reserve_temp_dir,
)
from inception_keras.export.warmup import write_warmup_file


def export_saved_model(
    model,
    export_dir="saved_models",
    *,
    model_name="inception_v3",
    version=None,
    class_names=None,
    top_k=5,
    image_size=None,
    warmup_images=None,
):
    """Exports `model` as a TF Serving SavedModel and returns the new version folder.

    Args:
        model: a Keras classifier, e.g. from `build_inception_v3`; an auxiliary head is dropped
            (`inference_model`). The current weights are exported: swap EMA weights in first.
        export_dir: the folder holding one model base path per model name.
        model_name: the model base path inside `export_dir` (TF Serving's `--model_name`).
        version: integer version to write; `None` for the next free one. An existing version is
            never overwritten (`ExportError`).
        class_names: one string per class, in label order. Default: the ImageNet names for a
            1000-class model, else `class_0, class_1, ...`.
        top_k: how many classes `serving_default` returns per image (at most all of them).
        image_size: side the serving graph resizes images to; default the model's input size.
        warmup_images: encoded images (bytes) for the warm-up requests; default synthetic ones.

    Returns:
        The path of the version folder, `<export_dir>/<model_name>/<version>`.

    Raises:
        ExportError: the model, an argument or the destination is not usable as given.
    """
    spec = serving_spec(model, class_names=class_names, top_k=top_k, image_size=image_size)
    base = model_base_dir(export_dir, model_name)
    version = next_version(base) if version is None else check_new_version(base, version)
    with reserve_temp_dir(base) as temp_dir:
        build_archive(spec).write_out(temp_dir, verbose=False)
        write_warmup_file(temp_dir, model_name, spec.image_size, warmup_images)
        return publish(temp_dir, base, version)
