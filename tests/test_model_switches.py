"""The paper's model switches of build_inception_v3: stem, aux_batch_norm, receptive_field.

Each switch changes exactly the layers it names (the layer-name lists of the two networks are
diffed) and what those layers do; the defaults stay keras.applications' network (see
tests/test_model.py); every switch builds on every installed Keras backend; the costs of the
paper's networks are recorded here, the numbers the README's cost table shows.
"""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from conftest import REPO, cli_env
from inception_keras import build_inception_v3, inference_model

SMALL = dict(depth_multiplier=0.125, classes=5)
STEM_3X3 = {f"stem_conv{i}_{part}" for i in (1, 2, 3) for part in ("conv", "bn", "relu")}
STEM_7X7 = {f"stem_conv7x7_{part}" for part in ("conv", "bn", "relu")}


def names(model):
    return [layer.name for layer in model.layers]


def diff(before, after):
    """(removed, added) layer names between two models."""
    old, new = set(names(before)), set(names(after))
    return old - new, new - old


@pytest.fixture(scope="module")
def default_299():
    return build_inception_v3(**SMALL)


def test_7x7_stem_replaces_the_three_3x3_convolutions_and_nothing_else(default_299):
    v2 = build_inception_v3(stem="7x7", **SMALL)
    assert diff(default_299, v2) == (STEM_3X3, STEM_7X7)
    conv = v2.get_layer("stem_conv7x7_conv")
    assert (conv.kernel_size, conv.strides, conv.padding) == ((7, 7), (2, 2), "valid")
    assert conv.kernel.shape[2] == 3
    # the same 147x147 map as the 3x3 sequence it stands for, so every later layer is the same
    assert v2.get_layer("stem_conv7x7_relu").output.shape == \
        default_299.get_layer("stem_conv3_relu").output.shape == (None, 147, 147, 16)


def test_aux_batch_norm_off_drops_only_the_fc_layers_batch_norm(default_299):
    plain = build_inception_v3(aux_batch_norm=False, **SMALL)
    assert diff(default_299, plain) == ({"aux_conv2_bn"}, set())
    assert plain.get_layer("aux_conv2_conv").use_bias  # its shift, now that no BN gives one
    assert not default_299.get_layer("aux_conv2_conv").use_bias
    assert plain.get_layer("aux_conv2_relu").input is plain.get_layer("aux_conv2_conv").output


@pytest.mark.parametrize("receptive_field, removed, grid", [(151, set(), 35),
                                                            (79, {"stem_pool1"}, 36)])
def test_receptive_field_changes_the_first_stride_and_pooling(default_299, receptive_field,
                                                              removed, grid):
    low = build_inception_v3(receptive_field=receptive_field, **SMALL)
    assert low.input.shape == (None, receptive_field, receptive_field, 3)
    assert diff(default_299, low) == (removed, set())
    assert low.get_layer("stem_conv1_conv").strides == (1, 1)
    assert default_299.get_layer("stem_conv1_conv").strides == (2, 2)
    first_grid = 149 if receptive_field == 151 else 77  # 151: the 299 network's 149x149
    assert low.get_layer("stem_conv1_conv").output.shape[1] == first_grid
    assert low.get_layer("mixed0").output.shape[1:3] == (grid, grid)
    # the weights keep their shapes: only strides and pooling differ
    shapes = lambda m: [tuple(w.shape) for w in m.weights]  # noqa: E731
    assert shapes(low) == shapes(default_299)


@pytest.mark.parametrize("kwargs, argument", [
    (dict(stem="5x5"), "stem"),
    (dict(aux_batch_norm="yes"), "aux_batch_norm"),
    (dict(receptive_field=224), "receptive_field"),
    (dict(variant="table1", stem="7x7"), "variant='table1'"),
    (dict(weights="imagenet", stem="7x7"), "stem='7x7'"),
])
def test_switch_mistakes_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        build_inception_v3(**kwargs)


@pytest.mark.slow  # two builds and a weights file
@pytest.mark.parametrize("saved, loaded", [(dict(stem="7x7"), {}),
                                           ({}, dict(aux_batch_norm=False))])
def test_weights_file_of_the_other_switch_is_refused(saved, loaded, tmp_path):
    path = str(tmp_path / "saved.weights.h5")
    build_inception_v3(input_shape=(75, 75, 3), **SMALL, **saved).save_weights(path)
    with pytest.raises(ValueError, match="stem, aux_batch_norm") as error:
        build_inception_v3(weights=path, input_shape=(75, 75, 3), **SMALL, **loaded)
    assert "\n" not in str(error.value)


# (parameters, multiply-adds) of the main head at 1000 classes, at each network's input size
# (complexity.multiply_adds); README "Reproducing the paper" shows the same numbers.
COSTS = {
    "v3": (dict(), 23_851_784, 5_713_216_096),
    "v2": (dict(stem="7x7"), 23_832_488, 5_299_886_272),
    "151": (dict(receptive_field=151), 23_851_784, 5_713_216_096),
    "79": (dict(receptive_field=79), 23_851_784, 5_361_703_520),
}


@pytest.mark.slow  # four full-size builds
def test_costs_of_the_papers_networks():
    from inception_keras.models.complexity import multiply_adds

    for kwargs, params, macs in COSTS.values():
        model = inference_model(build_inception_v3(**kwargs))
        if "stem" in kwargs:  # BN-Inception's first layer: 7x7/2 to 64 channels
            assert model.get_layer("stem_conv7x7_conv").filters == 64
        assert (model.count_params(), multiply_adds(model)) == (params, macs), kwargs
    # the paper: 3.8 -> 4.8 billion for the factorized stem; Table 2 "almost identical" costs
    assert COSTS["v2"][2] / COSTS["v3"][2] == pytest.approx(0.928, abs=1e-3)
    assert COSTS["151"][2] == COSTS["v3"][2]
    assert COSTS["79"][2] / COSTS["v3"][2] == pytest.approx(0.938, abs=1e-3)


BUILD_EVERY_SWITCH = """
import keras, numpy as np
from inception_keras import build_inception_v3
for kwargs in ({}, {"stem": "7x7"}, {"aux_batch_norm": False}, {"receptive_field": 151},
               {"receptive_field": 79}):
    model = build_inception_v3(depth_multiplier=0.125, classes=3, input_shape=(79, 79, 3),
                               **kwargs)
    out = model(np.zeros((1, 79, 79, 3), "float32"), training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "predictions": (1, 3), "aux_predictions": (1, 3)}, out
print(keras.backend.backend(), "ok")
"""


# Each backend's own packages (the numpy backend needs scipy); those not installed are skipped.
BACKEND_NEEDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "scipy"}


@pytest.mark.slow  # a Python with a Keras backend per case
@pytest.mark.parametrize("backend", sorted(BACKEND_NEEDS))
def test_every_switch_builds_and_runs_on_every_keras_backend(backend):
    pytest.importorskip(BACKEND_NEEDS[backend])
    result = subprocess.run([sys.executable, "-c", BUILD_EVERY_SWITCH], capture_output=True,
                            text=True, cwd=REPO, env=cli_env(KERAS_BACKEND=backend), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith(f"{backend} ok")
