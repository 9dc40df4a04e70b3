"""Transfer learning: start a model from pretrained weights, and choose which of its layers train.

    report = load_init_weights(model, "imagenet")   # or a weights file, or a training run's dir
    print(report)                                    # what loaded, what kept its initialisation
    set_trainable_from(model, "head")                # train the classifier(s) only, then e.g.
    set_trainable_from(model, "mixed8")              # the blocks after mixed8 (9, 10) too

Weights are matched by layer name (the model's names are those of `keras.applications`'
InceptionV3 for `include_aux=False`). A classifier whose shape differs from the source's (another
number of classes) keeps its fresh initialisation, and the report says so; any other difference
means the source holds another network, and is an error.
"""

import collections
import contextlib
import dataclasses
import difflib
import os
import shutil
import tempfile
import warnings

import h5py
import keras
import numpy as np
import tensorflow as tf

from inception_keras.models import AUX_PREDICTIONS, PREDICTIONS
from inception_keras.models import weights as weights_lib
from inception_keras.models.inception_v3 import build_inception_v3, inference_model
from inception_keras.training.loop.checkpoints import CHECKPOINT_SUBDIR, load_config_dict

CLASSIFIER_LAYERS = (PREDICTIONS, AUX_PREDICTIONS)
IMAGENET = "imagenet"
TRAINABLE_SPECS = ("all", "head")


@dataclasses.dataclass(frozen=True)
class InitReport:
    """What `load_init_weights` did.

    Attributes:
        source: where the weights came from, in words (path, checkpoint, EMA or raw weights).
        loaded: names of the layers whose weights were loaded.
        kept_fresh: one line per classifier whose shape differs from the source's, e.g.
            `predictions: kernel (2048, 1000) in the weights, (2048, 5) in the model; kept fresh`.
        not_in_source: names of layers with weights that the source does not have (e.g. the
            auxiliary head when starting from Keras' file); they keep their initialisation.
    """

    source: str
    loaded: tuple
    kept_fresh: tuple = ()
    not_in_source: tuple = ()

    def lines(self):
        lines = [f"init weights: {len(self.loaded)} layers from {self.source}"]
        lines += list(self.kept_fresh)
        if self.not_in_source:
            lines.append(f"not in the weights, kept fresh: {', '.join(self.not_in_source)}")
        return lines

    def __str__(self):
        return "\n".join(self.lines())


def load_init_weights(model, source, *, include_aux=None, ema=None, restore_fn=None):
    """Loads pretrained weights into `model` (a classifier from `build_inception_v3`).

    Args:
        model: the model to initialise, with or without its auxiliary head, any number of classes.
        source: one of
            - `"imagenet"`: Keras' published InceptionV3 file (with its top), from the Keras cache
              (`$KERAS_HOME/models`, default `~/.keras/models`) or downloaded;
            - the path of a Keras-2 `.h5` file (Keras' published files, with or without top);
            - the path of a `.weights.h5` saved from `keras.applications.InceptionV3` or from a
              model built here (with or without auxiliary head, any number of classes);
            - a training run's model dir (holding `checkpoints/` and `config.json`), its
              `checkpoints/` folder, or one checkpoint's prefix (`.../checkpoints/ckpt-1000`).
        include_aux: whether `model` has the auxiliary head; `None` reads it off the model (a
            mismatch with the model is an error).
        ema: for checkpoints: `None` loads the exponential moving average of the weights when the
            checkpoint has one (an `ema` object) and the raw weights otherwise; `True` requires
            the average; `False` loads the raw weights.
        restore_fn: for checkpoints, replaces the default restore: called as
            `restore_fn(twin, checkpoint_path)`, it must leave in `twin` (a model of the saved
            run's architecture) the weights to start from, and may return a few words for the
            report (e.g. "EMA weights").

    Returns:
        An `InitReport`; `print(report)` gives one line per fact.

    Raises:
        ValueError: the source cannot be found or read, or holds another network; the message
            says which and what to do.
    """
    _check_model(model, include_aux)
    if isinstance(source, str) and source == IMAGENET:
        path = _imagenet_file()
        return _load_h5(model, path, f"Keras' ImageNet weights ({path})")
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"init weights must be 'imagenet' or a path; received {source!r}.")
    source = os.fspath(source)
    checkpoint = _find_checkpoint(source)
    if checkpoint is not None:
        return _load_checkpoint(model, *checkpoint, ema=ema, restore_fn=restore_fn)
    if not tf.io.gfile.exists(source):
        raise ValueError(
            f"init weights {source!r}: no such file or folder. Pass 'imagenet', a weights file "
            "(.h5 / .weights.h5) or a training run's model dir."
        )
    if tf.io.gfile.isdir(source):
        raise ValueError(
            f"init weights {source!r} is a folder without checkpoints (expected "
            f"{CHECKPOINT_SUBDIR}/ with a `checkpoint` index, as a training run writes)."
        )
    with _local_copy(source) as local:
        return _load_h5(model, local, source)


@contextlib.contextmanager
def _local_copy(path):
    """`path` itself when local; else a local temporary copy (h5py reads local files only)."""
    if "://" not in path:
        yield path
        return
    folder = tempfile.mkdtemp(prefix="init_weights-")
    try:
        local = os.path.join(folder, os.path.basename(path))
        tf.io.gfile.copy(path, local)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_model(model, include_aux):
    names = {layer.name for layer in model.layers}
    if PREDICTIONS not in names:
        raise ValueError(
            "load_init_weights needs a classifier (build_inception_v3(include_top=True)); for a "
            "feature extractor pass weights= to build_inception_v3."
        )
    has_aux = AUX_PREDICTIONS in names
    if include_aux is not None and bool(include_aux) != has_aux:
        raise ValueError(
            f"include_aux={include_aux} but the model {'has' if has_aux else 'has no'} "
            "auxiliary head."
        )


def _keras_cache():
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")


def _imagenet_file():
    file_name, _ = weights_lib.KERAS_WEIGHTS_FILES[True]
    url = weights_lib.KERAS_WEIGHTS_URL + file_name
    try:
        return weights_lib.imagenet_weights_path(True)
    except ValueError:
        cache = _keras_cache()
        raise ValueError(
            f"init weights 'imagenet' need Keras' published file {file_name}: it is not in "
            f"{cache} and cannot be downloaded from here. Download {url} where you have internet "
            f"access and copy it into {cache}/ (or pass the file's path as the init weights)."
        ) from None


# --- weights files ------------------------------------------------------------------------------


def _h5_shapes(path):
    """Shapes of the layer weights stored in a Keras-2 `.h5` or Keras-3 `.weights.h5` file."""
    shapes = []

    def visit(_, item):
        if isinstance(item, h5py.Dataset) and item.shape:
            shapes.append(tuple(int(d) for d in item.shape))

    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        (root["layers"] if "layers" in root else root).visititems(visit)
    return shapes


def _weighted(model):
    return weights_lib.count_model_weighted_layers(model)


def _without_classifiers(shapes):
    """(shape -> count without the dense kernels (F, C) and their biases (C,), sorted F's)."""
    kernels = [shape for shape in shapes if len(shape) == 2]  # only dense kernels are 2-D
    rest = collections.Counter(shapes)
    for kernel in kernels:
        rest[kernel] -= 1
        rest[(kernel[1],)] -= 1
    return {shape: n for shape, n in rest.items() if n}, sorted(kernel[0] for kernel in kernels)


def _with_classes(model, classes):
    """A copy of `model` (fresh weights, same layer names) whose classifiers have `classes`."""

    def clone(layer):
        config = layer.get_config()
        if layer.name in CLASSIFIER_LAYERS:
            config["units"] = classes
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def _load_h5(model, path, label):
    """Loads the local weights file `path` (named `label` in messages) into `model`."""
    try:
        file_layers = weights_lib.count_weighted_layers(path)
        file_shapes = _h5_shapes(path)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"init weights {label!r} are not a readable Keras weights file: {error}"
        ) from None
    file_classes = {shape[-1] for shape in file_shapes if len(shape) == 2}
    if len(file_classes) > 1:
        raise ValueError(
            f"init weights {path!r} hold dense layers of {sorted(file_classes)} outputs; "
            "expected one number of classes (an Inception-v3 classifier)."
        )
    # The network the file was saved from: this model, this model without its auxiliary head,
    # or its backbone without classifier (Keras' "notop" file). These sub-models share the
    # model's layers, so the file loads straight into the model.
    if file_classes:
        candidates = [model]
        main = inference_model(model)
        if main is not model:
            candidates.append(main)
    else:
        candidates = [keras.Model(model.inputs, model.get_layer("avg_pool").input)]
    for candidate in candidates:
        if _weighted(candidate) == file_layers:
            return _load_into(candidate, model, path, file_shapes, label)
    raise ValueError(
        f"init weights {path!r} hold {file_layers} layers with weights, which fits neither this "
        f"model ({_weighted(model)}) nor its network without the auxiliary head or classifier "
        f"({', '.join(str(_weighted(c)) for c in candidates[1:]) or 'n/a'}). A file saved with "
        "an auxiliary head loads only into a model built with include_aux=True."
    )


def _load_into(candidate, model, path, file_shapes, label):
    """Loads the file into `candidate` (a sub-model of `model`), classifiers of other shapes aside.

    Keras loads by layer order; the weight shapes, classifiers set aside, must be the same
    multiset in the file and the model, so that `skip_mismatch` can only skip the classifiers.
    """
    classifiers = [layer for layer in candidate.layers if layer.name in CLASSIFIER_LAYERS]
    model_shapes = [tuple(int(d) for d in w.shape) for w in candidate.weights]
    if _without_classifiers(file_shapes) != _without_classifiers(model_shapes):
        raise ValueError(
            f"init weights {path!r} do not fit this model: the same number of layers but other "
            "weight shapes (another variant or depth_multiplier?)."
        )
    file_kernels = {shape[0]: shape for shape in file_shapes if len(shape) == 2}
    kept_fresh = []
    for layer in classifiers:
        kernel = tuple(int(d) for d in layer.kernel.shape)
        if file_kernels[kernel[0]] != kernel:
            kept_fresh.append((layer.name, (
                f"{layer.name}: kernel {file_kernels[kernel[0]]} in the weights, {kernel} in the "
                "model; kept fresh")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about each skipped classifier
        try:
            candidate.load_weights(path, skip_mismatch=bool(kept_fresh))
        except ValueError as error:
            raise ValueError(
                f"init weights {path!r} do not fit this model: {_first_line(error)}"
            ) from None
    fresh = {name for name, _ in kept_fresh}
    loaded = tuple(l.name for l in candidate.layers if l.weights and l.name not in fresh)
    in_candidate = {l.name for l in candidate.layers}
    missing = tuple(l.name for l in model.layers if l.weights and l.name not in in_candidate)
    return InitReport(label, loaded, tuple(line for _, line in kept_fresh), missing)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _shapes(layer):
    return [tuple(int(d) for d in w.shape) for w in layer.weights]


def _copy_from(twin, model, label):
    """Copies every weighted layer of `twin` into the same-named layer of `model`."""
    loaded, kept_fresh, mismatched = [], [], []
    twin_names = set()
    for layer in twin.layers:
        if not layer.weights:
            continue
        twin_names.add(layer.name)
        try:
            target = model.get_layer(layer.name)
        except ValueError:
            continue  # e.g. the saved run's aux head, which this model does not have
        if target is layer:
            loaded.append(layer.name)
            continue
        source_shapes, target_shapes = _shapes(layer), _shapes(target)
        if source_shapes == target_shapes:
            target.set_weights(layer.get_weights())
            loaded.append(layer.name)
        elif layer.name in CLASSIFIER_LAYERS:
            kept_fresh.append(
                f"{layer.name}: {layer.weights[0].name} {source_shapes[0]} in the weights, "
                f"{target_shapes[0]} in the model; kept fresh"
            )
        else:
            mismatched.append(f"{layer.name} {source_shapes} vs {target_shapes}")
    if mismatched:
        raise ValueError(
            f"init weights {label} hold another network: {len(mismatched)} layers differ in "
            f"shape from this model's (weights vs model): {'; '.join(mismatched[:3])}"
            f"{' ...' if len(mismatched) > 3 else ''}"
        )
    missing = tuple(l.name for l in model.layers if l.weights and l.name not in twin_names)
    return InitReport(label, tuple(loaded), tuple(kept_fresh), missing)


# --- training checkpoints -----------------------------------------------------------------------


def _find_checkpoint(source):
    """(model_dir, checkpoint path) when `source` names a training checkpoint, else None."""
    if tf.io.gfile.exists(source + ".index"):  # one checkpoint's prefix
        folder = os.path.dirname(source.rstrip("/"))
        return os.path.dirname(folder), source
    if not tf.io.gfile.isdir(source):
        return None
    for folder, model_dir in ((os.path.join(source, CHECKPOINT_SUBDIR), source),
                              (source, os.path.dirname(source.rstrip("/")))):
        if tf.io.gfile.exists(os.path.join(folder, "checkpoint")):
            latest = tf.train.latest_checkpoint(folder)
            if latest is None:
                raise ValueError(f"init weights {source!r}: the checkpoint index in {folder} "
                                 "names no checkpoint that exists.")
            return model_dir, latest
    return None


def _checkpoint_classes(path):
    classes = {shape[-1] for _, shape in tf.train.list_variables(path) if len(shape) == 2}
    if len(classes) != 1:
        raise ValueError(
            f"init weights {path!r}: expected the dense layers of one classifier in the "
            f"checkpoint, found output sizes {sorted(classes)}."
        )
    return classes.pop()


def _twin_for_checkpoint(model, model_dir, path):
    """A fresh model of the saved run's architecture (from its config.json when there is one)."""
    classes = _checkpoint_classes(path)
    config = load_config_dict(model_dir) if model_dir else None
    if config is None:  # no config: assume the model's own architecture
        return _with_classes(model, classes)
    size = int(config.get("image_size", 299))
    try:
        return build_inception_v3(
            weights=None, input_shape=(size, size, 3), classes=classes,
            include_aux=bool(config.get("include_aux", True)),
            variant=config.get("variant", "canonical"),
            depth_multiplier=float(config.get("depth_multiplier", 1.0)),
            min_depth=int(config.get("min_depth", 16)),
            stem=config.get("stem", "factorized"),
            aux_batch_norm=bool(config.get("aux_batch_norm", True)),
            receptive_field=int(config.get("receptive_field", 299)),
        )
    except ValueError as error:
        raise ValueError(f"init weights {model_dir}: cannot rebuild its network from config.json: "
                         f"{error}") from None


def restore_checkpoint_weights(twin, path, *, ema=None):
    """Restores the model weights of training checkpoint `path` into `twin`; returns a label.

    With `ema` (see `load_init_weights`) and an `ema` object in the checkpoint (the trainer's
    `ExponentialMovingAverage`), `twin` is left holding the averaged weights.
    """
    roots = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    if ema and "ema" not in roots:
        raise ValueError(f"init weights {path}: ema=True but the checkpoint has no EMA averages "
                         "(the run had no ema_momentum).")
    use_ema = ("ema" in roots) if ema is None else bool(ema)
    objects = {"model": twin}
    if use_ema:
        from inception_keras.training.step.ema import ExponentialMovingAverage

        objects["ema"] = ExponentialMovingAverage(twin, 0.5)  # the decay is not saved or used
    status = tf.train.Checkpoint(**objects).restore(path)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise ValueError(f"init weights {path} do not hold this network: {_first_line(error)}") from None
    if not use_ema:
        return "raw weights"
    with objects["ema"].swapped():
        averaged = [w.numpy() for w in twin.weights]
    for weight, value in zip(twin.weights, averaged):
        weight.assign(value)
    return "EMA weights"


def _load_checkpoint(model, model_dir, path, *, ema, restore_fn):
    twin = _twin_for_checkpoint(model, model_dir, path)
    try:
        if restore_fn is None:
            what = restore_checkpoint_weights(twin, path, ema=ema)
        else:
            what = restore_fn(twin, path)
    except (tf.errors.OpError, ValueError) as error:
        if isinstance(error, ValueError) and str(error).startswith("init weights"):
            raise
        raise ValueError(f"init weights {path} cannot be restored: {_first_line(error)}") from None
    label = f"checkpoint {path}" + (f" ({what})" if what else "")
    return _copy_from(twin, model, label)


# --- which layers train -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainableSummary:
    """What `set_trainable_from` did."""

    spec: str
    trainable_layers: tuple  # names of the layers with weights that train
    frozen_layers: tuple  # names of the layers with weights that are frozen
    trainable_params: int
    total_params: int

    def __str__(self):
        return (
            f"trainable from {self.spec}: {len(self.trainable_layers)} of "
            f"{len(self.trainable_layers) + len(self.frozen_layers)} layers with weights, "
            f"{self.trainable_params:,} of {self.total_params:,} parameters; frozen "
            "BatchNormalization layers run in inference mode"
        )


def set_trainable_from(model, spec):
    """Chooses which layers train: the classifiers only, everything, or the top of the network.

    Args:
        model: a model from `build_inception_v3` (plain or with fused batch norm).
        spec: `"all"` (every layer trains), `"head"` (only the classifiers `predictions` and
            `aux_predictions` train), or a layer name: that layer and every layer computed from
            its output train, all others are frozen. E.g. `"mixed8"` (the output of the last
            17x17 block) trains the two 8x8 blocks mixed9 and mixed10 and the classifier; the
            auxiliary head, which branches off mixed7, is frozen. The classifiers always train.

    "After" means after in the data flow, not in `model.layers`: Keras orders a functional
    model's layers by graph depth, which puts the auxiliary head among mixed10's layers.

    Frozen `BatchNormalization` layers run in inference mode (moving statistics, which they
    no longer update), as Keras 3 does for `trainable=False`, even under `training=True`.
    `model.trainable_variables` changes: build the optimizer on the variables that will ever
    train (Keras: compile after this call), and trace the train step again after a change.

    Returns:
        A `TrainableSummary` (`print` it for one line).

    Raises:
        ValueError: an unknown spec or layer name (the message lists close names).
    """
    names = [layer.name for layer in model.layers]
    if spec == "all":
        train = set(names)
    elif spec == "head":
        if not set(CLASSIFIER_LAYERS) & set(names):
            raise ValueError("trainable_from='head' needs a model with a classifier.")
        train = set()
    elif isinstance(spec, str) and spec in names:
        train = _computed_from(model, model.get_layer(spec))
    else:
        close = difflib.get_close_matches(str(spec), names, n=5, cutoff=0.6)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ValueError(
            f"trainable_from={spec!r} is not 'all', 'head' or a layer of {model.name}.{hint}"
        )
    model.trainable = True  # (recursively) so that the per-layer settings below count
    for layer in model.layers:
        layer.trainable = layer.name in train or layer.name in CLASSIFIER_LAYERS
    weighted = [layer for layer in model.layers if layer.weights]
    return TrainableSummary(
        spec=spec,
        trainable_layers=tuple(l.name for l in weighted if l.trainable),
        frozen_layers=tuple(l.name for l in weighted if not l.trainable),
        trainable_params=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        total_params=int(model.count_params()),
    )


def _computed_from(model, start):
    """Names of `start` and of every layer of `model` that its output flows into."""
    produced = {id(t) for t in tf.nest.flatten(start.output)}
    names = {start.name}
    for layer in model.layers:  # a functional model lists its layers in topological order
        if layer is start or isinstance(layer, keras.layers.InputLayer):
            continue
        if any(id(t) in produced for t in tf.nest.flatten(layer.input)):
            names.add(layer.name)
            produced.update(id(t) for t in tf.nest.flatten(layer.output))
    return names
