"""Transfer learning helpers: initialising from weight files and checkpoints, freezing layers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from inception_keras import build_inception_v3
from inception_keras.models import weights as weights_lib
from inception_keras.training.transfer import (
    InitReport,
    load_init_weights,
    set_trainable_from,
)

SIZE = 75
DEPTH = 0.125
AUX_LAYERS = ("aux_conv1_conv", "aux_conv1_bn", "aux_conv2_conv", "aux_conv2_bn", "aux_predictions")


def tiny(classes=5, include_aux=True, seed=None, **kwargs):
    model = build_inception_v3(
        input_shape=(SIZE, SIZE, 3), classes=classes, include_aux=include_aux,
        depth_multiplier=kwargs.pop("depth_multiplier", DEPTH), **kwargs
    )
    if seed is not None:
        randomize(model, seed)
    return model


def randomize(model, seed):
    """Random weights and BatchNorm statistics, so a mix-up of any two layers would show."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "moving_variance" in w.path:
            values = rng.uniform(0.5, 1.5, w.shape)
        else:
            values = rng.normal(0, 0.05, w.shape)
        w.assign(values.astype("float32"))


def weights_of(model, name):
    return [w.numpy() for w in model.get_layer(name).weights]


def assert_layer_equal(a, b, name):
    for x, y in zip(weights_of(a, name), weights_of(b, name), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=name)


def weighted_names(model):
    return [layer.name for layer in model.layers if layer.weights]


def write_keras2_h5(model, path):
    """The Keras-2 HDF5 layout of Keras' published files: auto-named groups, in layer order."""
    with h5py.File(path, "w") as f:
        names = []
        for index, layer in enumerate(l for l in model.layers if l.weights):
            name = f"{type(layer).__name__.lower()}_{index + 1}"
            if layer.name == "predictions":
                name = "predictions"
            group = f.create_group(name)
            weight_names = [f"{name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = weight_names
            for weight_name, w in zip(weight_names, layer.weights):
                group.create_dataset(weight_name.decode(), data=w.numpy())
            names.append(name.encode())
        f.attrs["layer_names"] = names
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"


@pytest.fixture(scope="module")
def keras_like(tmp_path_factory):
    """Stand-ins for Keras' two published files (with and without top), from a random model."""
    folder = tmp_path_factory.mktemp("keras_files")
    source = tiny(classes=1000, include_aux=False, seed=1)
    top, notop = str(folder / "top.h5"), str(folder / "notop.h5")
    write_keras2_h5(source, top)
    write_keras2_h5(keras.Model(source.inputs, source.get_layer("avg_pool").input), notop)
    return source, top, notop


# --- load_init_weights from files ------------------------------------------------------------


@pytest.mark.slow
def test_keras_file_into_a_model_with_other_classes_and_aux_head(keras_like):
    source, top, _ = keras_like
    model = tiny(classes=5, include_aux=True, seed=2)
    fresh_head = weights_of(model, "predictions")
    report = load_init_weights(model, top, include_aux=True)
    backbone = [n for n in weighted_names(source) if n != "predictions"]
    assert set(report.loaded) == set(backbone)
    for name in backbone:
        assert_layer_equal(source, model, name)
    features = source.get_layer("predictions").kernel.shape[0]
    assert report.kept_fresh == (
        f"predictions: kernel ({features}, 1000) in the weights, ({features}, 5) in the model; "
        "kept fresh",
    )
    np.testing.assert_array_equal(weights_of(model, "predictions")[0], fresh_head[0])
    assert report.not_in_source == AUX_LAYERS
    text = str(report)
    assert text.splitlines()[0] == f"init weights: {len(backbone)} layers from {top}"
    assert "not in the weights, kept fresh: aux_conv1_conv" in text


def test_keras_notop_file(keras_like):
    source, _, notop = keras_like
    model = tiny(classes=5, include_aux=False, seed=2)
    report = load_init_weights(model, notop)
    assert report.not_in_source == ("predictions",) and report.kept_fresh == ()
    for name in report.loaded:
        assert_layer_equal(source, model, name)


@pytest.mark.slow
def test_imagenet_is_the_keras_file_and_same_classes_load_everything(keras_like, monkeypatch):
    source, top, _ = keras_like
    monkeypatch.setattr(weights_lib, "imagenet_weights_path", lambda include_top: top)
    model = tiny(classes=1000, include_aux=False, seed=3)
    report = load_init_weights(model, "imagenet")
    assert report.source == f"Keras' ImageNet weights ({top})"
    assert set(report.loaded) == set(weighted_names(source)) and report.kept_fresh == ()
    x = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(model(x), source(x), atol=1e-6)


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """A `.weights.h5` saved from a model of ours with its auxiliary head and 3 classes."""
    source = tiny(classes=3, include_aux=True, seed=4)
    path = str(tmp_path_factory.mktemp("ours") / "run.weights.h5")
    source.save_weights(path)
    return source, path


@pytest.mark.slow
def test_our_weights_file_with_aux_head_and_other_classes(ours):
    source, path = ours
    model = tiny(classes=5, include_aux=True, seed=5)
    report = load_init_weights(model, path)
    aux_features = source.get_layer("aux_predictions").kernel.shape[0]
    assert report.kept_fresh[0] == (
        f"aux_predictions: kernel ({aux_features}, 3) in the weights, ({aux_features}, 5) in the "
        "model; kept fresh"
    )
    assert report.kept_fresh[1].startswith("predictions: kernel") and report.not_in_source == ()
    for name in ("stem_conv1_conv", "mixed7_branch1x1_bn", "aux_conv2_conv", "mixed10_branch1x1_bn"):
        assert_layer_equal(source, model, name)


def test_our_weights_file_of_the_same_classes(ours):
    source, path = ours
    model = tiny(classes=3, include_aux=True, seed=6)
    report = load_init_weights(model, path)
    assert report.kept_fresh == () and set(report.loaded) == set(weighted_names(source))
    assert_layer_equal(source, model, "predictions")
    assert_layer_equal(source, model, "aux_predictions")


@pytest.fixture(scope="module")
def wide():
    """A model of another depth_multiplier (also where a test needs any model, for an error)."""
    return tiny(classes=5, include_aux=True, depth_multiplier=0.25)


def test_imagenet_offline_says_which_file_to_get_and_where(wide, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # a closed port: fails at once
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.raises(ValueError) as error:
        load_init_weights(wide, "imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert (
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5" in message
    )
    assert f"copy it into {tmp_path / 'keras' / 'models'}/" in message


@pytest.mark.slow
def test_unusable_files_are_clear_errors(tmp_path, keras_like, ours, wide):
    _, top, _ = keras_like
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable Keras weights file"):
        load_init_weights(wide, str(text))
    with pytest.raises(ValueError, match="no such file"):
        load_init_weights(wide, str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="folder without checkpoints"):
        load_init_weights(wide, str(tmp_path))
    with pytest.raises(ValueError, match="do not fit this model"):  # another depth_multiplier
        load_init_weights(wide, top)
    with pytest.raises(ValueError, match="include_aux=False but the model has"):
        load_init_weights(wide, top, include_aux=False)
    with pytest.raises(ValueError, match="include_aux=True"):  # a file with aux head, model without
        load_init_weights(tiny(include_aux=False), ours[1])


# --- load_init_weights from a training run -------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A training run's model dir: config.json + a checkpoint with model, optimizer and EMA."""
    from inception_keras.training.step.ema import ExponentialMovingAverage

    model_dir = tmp_path_factory.mktemp("run")
    model = tiny(classes=3, include_aux=True, seed=8)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    ema = ExponentialMovingAverage(model, 0.99)
    rng = np.random.default_rng(9)
    for average in ema.averages:
        average.assign(average + rng.normal(0, 0.01, average.shape).astype("float32"))
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, ema=ema)
    tf.train.CheckpointManager(checkpoint, str(model_dir / "checkpoints"), 2).save(120)
    config = {"variant": "canonical", "depth_multiplier": DEPTH, "min_depth": 16,
              "include_aux": True, "image_size": SIZE, "dataset": "folder:/x"}
    (model_dir / "config.json").write_text(json.dumps(config))
    with ema.swapped():
        averaged = {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers}
    raw = {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers}
    return str(model_dir), raw, averaged


@pytest.mark.slow
def test_run_dir_loads_the_ema_weights(run_dir):
    model_dir, raw, averaged = run_dir
    model = tiny(classes=5, include_aux=True, seed=10)
    report = load_init_weights(model, model_dir)
    assert report.source.endswith("ckpt-120 (EMA weights)")
    assert [line.split(":")[0] for line in report.kept_fresh] == ["aux_predictions", "predictions"]
    for name in ("stem_conv1_conv", "mixed5_branch7x7_2_bn", "aux_conv1_conv"):
        for got, want, other in zip(weights_of(model, name), averaged[name], raw[name]):
            np.testing.assert_array_equal(got, want)
            assert not np.array_equal(got, other)


@pytest.mark.slow
def test_a_checkpoint_prefix_and_raw_weights(run_dir):
    model_dir, raw, _ = run_dir
    model = tiny(classes=3, include_aux=False, seed=11)  # the run's aux head is not used
    report = load_init_weights(model, os.path.join(model_dir, "checkpoints", "ckpt-120"), ema=False)
    assert report.source.endswith("(raw weights)") and report.kept_fresh == ()
    for name in ("stem_conv1_conv", "predictions"):
        for got, want in zip(weights_of(model, name), raw[name]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_run_dir_with_a_restore_fn(run_dir):
    model_dir, raw, _ = run_dir
    calls = []

    def restore(twin, path):
        calls.append(path)
        tf.train.Checkpoint(model=twin).restore(path).expect_partial()
        return "custom"

    checkpoints = os.path.join(model_dir, "checkpoints")  # the checkpoints folder works too
    report = load_init_weights(tiny(classes=3, seed=12), checkpoints, restore_fn=restore)
    assert calls and calls[0].endswith("ckpt-120")
    assert report.source.endswith("(custom)")


@pytest.mark.slow
def test_run_dir_of_another_network_is_refused(run_dir, wide):
    model_dir, _, _ = run_dir
    with pytest.raises(ValueError, match="another network"):
        load_init_weights(wide, model_dir)


# --- set_trainable_from -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return tiny(classes=4, include_aux=True, seed=13)


def test_head_trains_only_the_classifiers(model):
    summary = set_trainable_from(model, "head")
    assert summary.trainable_layers == ("aux_predictions", "predictions")
    assert len(model.trainable_weights) == 4
    assert "trainable from head: 2 of" in str(summary)


def test_from_a_layer_trains_what_is_computed_from_it(model):
    summary = set_trainable_from(model, "mixed8")
    for layer in model.layers:
        after = layer.name.startswith(("mixed9", "mixed10")) or layer.name in (
            "mixed8", "avg_pool", "top_dropout", "predictions", "aux_predictions")
        assert layer.trainable == after, layer.name
    assert "mixed9_branch1x1_conv" in summary.trainable_layers
    assert "aux_conv1_conv" in summary.frozen_layers  # the aux head branches off mixed7
    assert "mixed8_branch3x3_1_conv" in summary.frozen_layers  # inside the block, before its output
    assert str(summary).startswith(f"trainable from mixed8: {len(summary.trainable_layers)} of ")
    summary = set_trainable_from(model, "all")
    assert summary.frozen_layers == () and summary.trainable_params == summary.total_params - sum(
        int(np.prod(w.shape)) for w in model.non_trainable_weights)


def test_unknown_layer_lists_close_names(model):
    with pytest.raises(ValueError, match="mixed9") as error:
        set_trainable_from(model, "mixed_9")
    assert "'all', 'head'" in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("fused", [False, True])
def test_frozen_batch_norm_runs_in_inference_mode(fused):
    net = tiny(classes=4, include_aux=True, seed=14)
    if fused:
        from inception_keras.training.step.fused_batch_norm import with_fused_batch_norm

        net = with_fused_batch_norm(net)
        randomize(net, 14)
    set_trainable_from(net, "mixed8")
    frozen_bn, trained_bn = net.get_layer("mixed0_branch1x1_bn"), net.get_layer("mixed10_branch1x1_bn")
    before = {bn.name: [w.numpy() for w in bn.weights] for bn in (frozen_bn, trained_bn)}
    frozen_conv = net.get_layer("mixed5_branch1x1_conv").kernel.numpy()
    x = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    optimizer = keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        outputs = net(x, training=True)
        loss = tf.reduce_mean(outputs["predictions"][:, 0] + outputs["aux_predictions"][:, 0])
    optimizer.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
    for got, want in zip(frozen_bn.weights, before[frozen_bn.name]):
        np.testing.assert_array_equal(got.numpy(), want)  # moving statistics untouched
    assert not np.array_equal(trained_bn.moving_mean.numpy(), before[trained_bn.name][-2])
    np.testing.assert_array_equal(net.get_layer("mixed5_branch1x1_conv").kernel.numpy(), frozen_conv)
    frozen_part = keras.Model(net.inputs, net.get_layer("mixed8").output)
    np.testing.assert_allclose(frozen_part(x, training=True), frozen_part(x, training=False), atol=1e-6)
    trained_part = keras.Model(net.inputs, net.get_layer("mixed10").output)
    assert not np.allclose(trained_part(x, training=True), trained_part(x, training=False), atol=1e-3)


def test_report_type():
    report = InitReport("x", ("a",), ("p: kept fresh",), ("aux",))
    assert report.lines() == ["init weights: 1 layers from x", "p: kept fresh",
                              "not in the weights, kept fresh: aux"]
