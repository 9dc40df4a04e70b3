"""build_inception_v3: shapes, parameter counts, keras.applications equivalence, errors, saving."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from inception_keras import build_inception_v3, inference_model, preprocess_input

KERAS_INCEPTION_V3_PARAMS = 23_851_784
SMALL = dict(depth_multiplier=0.125)  # where the network's width is not what a test checks


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, *shape)).astype("float32")


def infer(model, x):
    """The model's inference output as NumPy: one eager call (no `predict` graph to trace)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def small_model():
    """A narrow canonical model with both heads, on non-square images (quick to build)."""
    return build_inception_v3(input_shape=(131, 97, 3), classes=7, **SMALL)


@pytest.fixture(scope="module")
def small_model_without_aux():
    return build_inception_v3(include_aux=False, input_shape=(75, 75, 3), **SMALL)


def check_both_outputs(model, shape, classes):
    out = model(images(shape), training=False)
    assert set(out) == {"predictions", "aux_predictions"}
    for probs in out.values():
        assert probs.shape == (2, classes)
        np.testing.assert_allclose(np.sum(probs, axis=-1), 1.0, rtol=1e-5)


def test_both_outputs_have_class_shape(small_model):
    check_both_outputs(small_model, (131, 97, 3), classes=7)


@pytest.mark.slow  # two more builds of the same code
@pytest.mark.parametrize("shape", [(75, 75, 3), (299, 299, 3)])
def test_both_outputs_have_class_shape_at_the_minimum_and_default_size(shape):
    check_both_outputs(build_inception_v3(input_shape=shape, classes=7, **SMALL), shape, classes=7)


def test_single_output_without_aux(small_model_without_aux):
    model = small_model_without_aux
    assert len(model.outputs) == 1 and tuple(model.output.shape) == (None, 1000)
    assert model.get_layer("predictions").activation.__name__ == "softmax"


@pytest.fixture(scope="module")
def small_table1_model():
    """A narrow table1 model at the minimum size; also the source of a foreign weights file."""
    return build_inception_v3(variant="table1", input_shape=(75, 75, 3), classes=5, **SMALL)


def test_table1_shapes_at_minimum_size(small_table1_model):
    model = small_table1_model
    # Keras computes every layer's static shape while building: a grid that shrank to nothing
    # at 75 px would already have failed in the fixture.
    assert [tuple(output.shape) for output in model.outputs] == [(None, 5), (None, 5)]


# Full-size models, each built once for the tests that only read them (none changes them).
@pytest.fixture(scope="module")
def canonical_model():
    return build_inception_v3()


@pytest.fixture(scope="module")
def canonical_model_without_aux():
    return build_inception_v3(include_aux=False)


@pytest.fixture(scope="module")
def table1_model():
    return build_inception_v3(variant="table1")


@pytest.mark.slow  # the full-size network
def test_canonical_parameter_count_equals_keras_applications(
    canonical_model_without_aux, keras_reference
):
    ours = canonical_model_without_aux
    # Keras' model at 75 px: its weights (count and shapes) do not depend on the input size.
    theirs = keras_reference
    assert ours.count_params() == theirs.count_params() == KERAS_INCEPTION_V3_PARAMS
    # Same weighted layers in the same order: the property Keras weight files rely on.
    shapes = lambda m: [[tuple(w.shape) for w in l.weights] for l in m.layers if l.weights]
    assert shapes(ours) == shapes(theirs)


@pytest.mark.slow  # the full-size network
def test_canonical_aux_head_adds_the_papers_layers(canonical_model, canonical_model_without_aux):
    with_aux = canonical_model
    without = canonical_model_without_aux
    aux_params = with_aux.count_params() - without.count_params()
    # 1x1 conv 768->128 + BN(128, no scale), 5x5 conv 128->768 + BN(768), dense 768->1000.
    expected = 768 * 128 + 3 * 128 + 5 * 5 * 128 * 768 + 3 * 768 + 768 * 1000 + 1000
    assert aux_params == expected
    assert with_aux.get_layer("aux_pool").input.shape[1:] == (17, 17, 768)


# Parameters of the original document's PyTorch model, read off its printed summary (conv + BN
# per BasicConv2d); shared Inception-C sub-modules are counted once. PyTorch counts parameters,
# not BN running statistics, so these compare with Keras' trainable weights.
DOC_STEM = [896 + 64, 9248 + 64, 18496 + 128, 46160 + 160, 138432 + 384, 497952 + 576]
DOC_INCEPTION_A = [18624, 37056, 55584, 13968, 27840, 18624, 18624]
DOC_GRID_A = [18624, 55584, 83232, 18624, 222336]
DOC_B = {
    128: [98688, 115072, 115072, 115072, 172608, 98688, 115072, 172608, 148032, 148032],
    160: [123360, 179680, 179680, 179680, 215616, 123360, 179680, 215616, 148032, 148032],
    192: [148032] + [258624] * 4 + [148032] + [258624] * 2 + [148032] * 2,
}
DOC_GRID_B = [148032, 332352, 332352, 148032, 553920]
DOC_C1 = [2124224, 443520, 443520, 492672, 443520, 443520, 246336, 410560]
DOC_C2 = [2468288, 443520, 443520, 787584, 443520, 443520, 393792, 656320]
DOC_CLASSIFIER = 2048 * 1000 + 1000
DOC_AUX = 1814504  # the summary's top-level line: the aux head's own parameters


def doc_backbone_params():
    blocks = [DOC_STEM, DOC_INCEPTION_A, DOC_INCEPTION_A, DOC_GRID_A, DOC_GRID_B, DOC_C1, DOC_C2]
    blocks += [DOC_B[128], DOC_B[160], DOC_B[160], DOC_B[192]]
    return sum(sum(block) for block in blocks)


@pytest.mark.slow  # the full-size network
def test_table1_parameters_match_the_original_document(table1_model):
    model = table1_model
    no_aux = build_inception_v3(variant="table1", include_aux=False)
    assert trainable_params(no_aux) == doc_backbone_params() + DOC_CLASSIFIER
    assert trainable_params(model) - trainable_params(no_aux) == DOC_AUX
    unit = lambda name: sum(
        trainable_params(model.get_layer(f"{name}_{part}")) for part in ("conv", "bn")
    )
    stem_units = ["conv1a", "conv1b", "conv1c", "conv2a", "conv2b", "conv2c"]
    assert [unit(n) for n in stem_units] == DOC_STEM
    # Inception-C's stacked 3x3 is one set of weights shared by its 1x3 and 3x1 splits.
    assert unit("inceptionC_1_branch_5x5_0") + unit("inceptionC_1_branch_5x5_1") == DOC_C1[0]


@pytest.mark.slow  # the full-size network
def test_table1_layout_and_initialisation(table1_model):
    model = table1_model
    assert model.get_layer("aux_pool").input.shape[1:] == (17, 17, 768)  # after gridreducA
    assert model.get_layer("conv2c_conv").output.shape[1:] == (35, 35, 288)
    conv = model.get_layer("inceptionB_4_branch_2n_1_conv")
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
    assert conv.use_bias and not bias.any()
    assert abs(kernel.std() - 0.01) < 0.001
    bn = model.get_layer("conv1a_bn")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9 and bn.scale
    dense = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel)
    assert np.abs(dense).max() <= 1 / np.sqrt(2048) + 1e-7  # PyTorch's default Linear init


def test_canonical_initialisation_and_batch_norm(small_model_without_aux):
    model = small_model_without_aux
    bn = model.get_layer("mixed5_branch1x1_bn")
    assert bn.epsilon == 1e-3 and not bn.scale
    conv = model.get_layer("mixed5_branch1x1_conv")
    assert not conv.use_bias
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    assert np.abs(kernel).max() <= 2 * np.sqrt(2 / fan_in) / 0.8796 + 1e-6  # truncated at 2 std
    assert abs(kernel.std() - np.sqrt(2 / fan_in)) < 0.1 * np.sqrt(2 / fan_in)


def randomize(model, seed=0):
    """Random weights and non-trivial BatchNorm statistics (so a BN mix-up would show)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        values = rng.normal(0, 0.05, w.shape)
        if "moving_variance" in w.path:
            values = rng.uniform(0.5, 1.5, w.shape)
        w.assign(values.astype("float32"))


def weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def copy_by_order(source, target):
    for a, b in zip(weighted_layers(source), weighted_layers(target), strict=True):
        b.set_weights(a.get_weights())


@pytest.fixture(scope="module")
def keras_reference():
    """keras.applications' InceptionV3 at 75 px with random weights; no test changes it."""
    model = keras.applications.InceptionV3(weights=None, input_shape=(75, 75, 3))
    randomize(model)
    return model


@pytest.fixture(scope="module")
def reference_batch(keras_reference):
    """(images, keras_reference's predictions for them), computed once."""
    x = images((75, 75, 3))
    return x, infer(keras_reference, x)


@pytest.mark.slow  # the full-size network
def test_predictions_equal_keras_applications(keras_reference, reference_batch):
    x, expected = reference_batch
    ours = build_inception_v3(include_aux=False, input_shape=(75, 75, 3))
    copy_by_order(keras_reference, ours)
    np.testing.assert_allclose(infer(ours, x), expected, atol=2e-6)
    logits_ours = build_inception_v3(
        include_aux=False, input_shape=(75, 75, 3), classifier_activation=None
    )
    copy_by_order(keras_reference, logits_ours)
    assert np.ptp(infer(logits_ours, x)) > 1.0  # the comparison above is not trivial


def write_keras2_h5(model, path):
    """A weights file in the Keras-2 HDF5 layout of Keras' published inception_v3 files."""
    import h5py

    with h5py.File(path, "w") as f:
        names = []
        for index, layer in enumerate(weighted_layers(model)):
            name = f"{type(layer).__name__.lower()}_{index + 1}"
            group = f.create_group(name)
            weight_names = [f"{name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = weight_names
            for weight_name, w in zip(weight_names, layer.weights):
                group.create_dataset(weight_name.decode(), data=keras.ops.convert_to_numpy(w))
            names.append(name.encode())
        f.attrs["layer_names"] = names
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"


@pytest.fixture(scope="module")
def keras_weight_files(keras_reference, tmp_path_factory):
    """keras_reference's weights, written once, in both layouts: file_format -> path (read only)."""
    folder = tmp_path_factory.mktemp("keras_weight_files")
    keras2 = str(folder / "inception_v3_weights_tf_dim_ordering_tf_kernels.h5")
    write_keras2_h5(keras_reference, keras2)
    keras3 = str(folder / "inception_v3.weights.h5")
    keras_reference.save_weights(keras3)
    return {"keras2_h5": keras2, "keras3_weights_h5": keras3}


@pytest.mark.slow  # the full-size network
@pytest.mark.parametrize("file_format", ["keras2_h5", "keras3_weights_h5"])
@pytest.mark.parametrize("include_aux", [False, True])
def test_loads_keras_weight_files(keras_weight_files, keras_reference, reference_batch,
                                  file_format, include_aux):
    model = build_inception_v3(
        weights=keras_weight_files[file_format], include_aux=include_aux, input_shape=(75, 75, 3)
    )
    x, expected = reference_batch
    np.testing.assert_allclose(infer(inference_model(model), x), expected, atol=2e-6)
    if include_aux:  # the aux head is not in the file: it keeps a fresh initialisation
        kernel = keras.ops.convert_to_numpy(model.get_layer("aux_conv1_conv").kernel)
        in_file = [keras.ops.convert_to_numpy(w) for w in keras_reference.weights
                   if tuple(w.shape) == kernel.shape]  # 1x1 768 -> 128 kernels of mixed4-7
        assert kernel.std() > 0 and in_file
        assert not any(np.allclose(kernel, weight) for weight in in_file)


@pytest.mark.slow  # the full-size network
def test_notop_file_loads_into_feature_extractor(keras_reference, reference_batch, tmp_path):
    notop = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
    for a, b in zip(weighted_layers(keras_reference), weighted_layers(notop)):  # all but the top
        b.set_weights(a.get_weights())
    path = str(tmp_path / "notop.weights.h5")
    notop.save_weights(path)
    ours = build_inception_v3(include_top=False, weights=path, pooling="avg", input_shape=(75, 75, 3))
    x, _ = reference_batch
    expected = np.mean(infer(notop, x), axis=(1, 2))
    np.testing.assert_allclose(infer(ours, x), expected, atol=2e-6)
    with pytest.raises(ValueError, match="weights="):
        build_inception_v3(weights=path, input_shape=(75, 75, 3))  # needs a classifier


@pytest.mark.slow  # three more builds; the fast tier builds a feature extractor below
@pytest.mark.parametrize(
    "pooling, shape", [(None, (None, 8, 8, 256)), ("avg", (None, 256)), ("max", (None, 256))]
)
def test_feature_extractor(pooling, shape):
    model = build_inception_v3(include_top=False, pooling=pooling, input_shape=(299, 299, 3), **SMALL)
    assert tuple(model.output.shape) == shape
    assert len(model.outputs) == 1


def test_feature_extractor_accepts_any_size():
    model = build_inception_v3(include_top=False, **SMALL)
    assert model.input.shape[1:] == (None, None, 3)
    assert model(images((96, 120, 3))).shape == (2, 1, 2, 256)  # 96 -> 1, 120 -> 2


@pytest.mark.slow  # another build
def test_input_tensor_is_used():
    tensor = keras.Input((80, 80, 3))
    model = build_inception_v3(input_tensor=tensor, include_aux=False, classes=4, **SMALL)
    assert model.inputs[0] is tensor
    assert model(images((80, 80, 3))).shape == (2, 4)


def test_depth_multiplier_shrinks_every_layer(small_model):
    assert small_model.get_layer("mixed10").output.shape[-1] == 2048 // 8
    assert small_model.count_params() < KERAS_INCEPTION_V3_PARAMS / 50


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(input_shape=(74, 299, 3)), "input_shape"),
        (dict(input_shape=(299, 299)), "input_shape"),
        (dict(variant="inception_v4"), "variant"),
        (dict(weights="imagenet", classes=10), "classes"),
        (dict(weights="/no/such/file.h5"), "weights"),
        (dict(input_shape=(None, None, 3)), "input_shape"),
        (dict(pooling="mean", include_top=False), "pooling"),
        (dict(weights="imagenet", variant="table1"), "variant"),
        (dict(depth_multiplier=0), "depth_multiplier"),
    ],
)
def test_user_errors_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        build_inception_v3(**kwargs)


@pytest.mark.slow  # a build and a weights file
def test_weights_file_of_another_model_is_refused(small_table1_model, tmp_path):
    path = str(tmp_path / "table1.weights.h5")
    small_table1_model.save_weights(path)
    with pytest.raises(ValueError, match="weights="):  # the same arguments but the variant
        build_inception_v3(weights=path, input_shape=(75, 75, 3), classes=5, **SMALL)


@pytest.mark.slow  # the full-size network
def test_imagenet_without_network_explains_how_to_get_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # a closed port: fails at once
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.raises(ValueError) as error:
        build_inception_v3(weights="imagenet")
    message = str(error.value)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels.h5" in message
    assert "storage.googleapis.com" in message and "weights='/path/to/" in message


@pytest.mark.slow  # a save and a load
def test_keras_file_round_trip(small_model, tmp_path):
    model = small_model
    original = model.get_weights()
    try:
        randomize(model, seed=1)
        path = str(tmp_path / "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        x = images((131, 97, 3))
        expected = model(x, training=False)
        got = restored(x, training=False)
    finally:
        model.set_weights(original)  # the module's other tests share the model
    assert set(got) == set(expected) == {"predictions", "aux_predictions"}
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=1e-6)


def test_inference_model_shares_weights(small_model):
    model = small_model
    single = inference_model(model)
    assert len(single.outputs) == 1 and single.count_params() < model.count_params()
    x = images((131, 97, 3))
    before = single(x, training=False)
    np.testing.assert_allclose(before, model(x, training=False)["predictions"], atol=1e-6)
    bias = model.get_layer("predictions").bias
    original = bias.numpy()
    try:
        bias.assign(np.arange(7, dtype="float32"))
        after = single(x, training=False)
        np.testing.assert_allclose(after, model(x, training=False)["predictions"], atol=1e-6)
        assert not np.allclose(after, before)  # the change reached the inference model
    finally:
        bias.assign(original)
    assert inference_model(single) is single


def test_classifiers_are_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_inception_v3(input_shape=(75, 75, 3), classes=3, **SMALL)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("mixed0").compute_dtype == "bfloat16"
    assert [output.dtype for output in model.outputs] == ["float32", "float32"]


def test_preprocess_input_matches_keras():
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = keras.applications.inception_v3.preprocess_input(pixels.copy())
    np.testing.assert_allclose(preprocess_input(pixels), expected, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(preprocess_input(keras.ops.convert_to_tensor(pixels))), expected, atol=1e-6)
    assert preprocess_input(np.array([0.0, 255.0])).tolist() == [-1.0, 1.0]
