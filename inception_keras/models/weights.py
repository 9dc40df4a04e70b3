"""Loading pretrained weights: Keras' published ImageNet files and files saved from our models."""

import os

import h5py
import keras

from inception_keras.models import PREDICTIONS

KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
KERAS_WEIGHTS_FILES = {
    # include_top -> (file name, md5 as published by keras.applications)
    True: ("inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "9a0d58056eeedaa3f26cb7ebd46da564"),
    False: (
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
    ),
}


def imagenet_weights_path(include_top):
    """Keras' ImageNet file from the Keras cache, downloading it when it is not there yet."""
    file_name, md5 = KERAS_WEIGHTS_FILES[include_top]
    url = KERAS_WEIGHTS_URL + file_name
    try:
        return keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=md5)
    except Exception as error:  # no network, proxy, bad hash: all end the same way for the user
        cache = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")
        raise ValueError(
            f"weights='imagenet' needs Keras' published file {file_name}, which is not in "
            f"{cache} and could not be downloaded ({type(error).__name__}: {error}). "
            f"Download {url} where you have internet access, then pass "
            f"weights='/path/to/{file_name}' or copy the file into {cache}/."
        ) from None


def count_weighted_layers(path):
    """Layers that hold variables in a Keras-2 `.h5` or a Keras-3 `.weights.h5` file."""
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in group.attrs:  # Keras 2 layout: one group per layer, listed in order
            return sum(
                1
                for name in group.attrs["layer_names"]
                if len(group[_decode(name)].attrs.get("weight_names", [])) > 0
            )
        if "layers" in group:  # Keras 3 layout: layers/<class_name_N>/vars/<index>
            return sum(
                1
                for layer in group["layers"].values()
                if "vars" in layer and len(layer["vars"]) > 0
            )
    raise ValueError(f"weights file {path!r} is not a Keras weights file (no layers found in it).")


def count_model_weighted_layers(model):
    return sum(1 for layer in model.layers if layer.weights)


def load_weights(model, path, twin_factory):
    """Loads `path` into `model`.

    A file saved from a model of the same configuration loads directly. Otherwise the file may be
    the plain backbone (Keras' InceptionV3 with or without its top): `twin_factory(include_top)`
    builds that single-output model with our layer names, the file loads into it, and its weights
    are copied by layer name; layers the file lacks (the auxiliary head) keep their initialisation.
    """
    try:
        file_layers = count_weighted_layers(path)
    except OSError as error:
        raise ValueError(f"weights={path!r} is not a readable HDF5 weights file: {error}") from None
    if file_layers == count_model_weighted_layers(model):
        _load_or_explain(model, path)
        return model
    for include_top in _twin_tops(model, twin_factory):
        twin = twin_factory(include_top)
        if count_model_weighted_layers(twin) == file_layers:
            _load_or_explain(twin, path)
            _copy_weights_by_name(twin, model)
            return model
    raise ValueError(
        f"weights={path!r} holds {file_layers} layers with weights, which matches neither this "
        f"model ({count_model_weighted_layers(model)}) nor Keras' InceptionV3 backbone. Pass a file "
        "saved from a model built with the same arguments (classes, variant, stem, "
        "aux_batch_norm, include_aux, depth_multiplier), or Keras' "
        f"{KERAS_WEIGHTS_FILES[True][0]} / {KERAS_WEIGHTS_FILES[False][0]}."
    )


def _twin_tops(model, twin_factory):
    if twin_factory is None:
        return ()
    has_top = any(layer.name == PREDICTIONS for layer in model.layers)
    # A model with a classifier needs one from the file; a feature extractor can use either file.
    return (True,) if has_top else (True, False)


def _load_or_explain(model, path):
    try:
        model.load_weights(path)
    except ValueError as error:
        raise ValueError(
            f"weights={path!r} does not fit this model (were `classes`, `variant`, `stem`, "
            f"`aux_batch_norm` or `depth_multiplier` different when it was saved?): {error}"
        ) from None


def _copy_weights_by_name(source, target):
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())


def _decode(name):
    return name.decode("utf8") if isinstance(name, bytes) else name
