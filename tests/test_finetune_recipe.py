"""The `finetune` recipe: its choices, its placeholder dataset, and a tiny run through the CLI
from a weights file to an export with the folder's class names, with frozen layers unchanged:
its head-only epoch, then a resume (which must not load the init weights again) for its second
epoch, with the top blocks unfrozen. This is also the recipe's case of the recipe matrix
(tests/test_recipe_matrix.py): 2 epochs, a validation after each, to its export."""

import importlib
import re

import numpy as np
import pytest

import configs
from configs.base import apply_overrides
from conftest import run_trainer

CLASSES = ("daisy", "rose", "tulip")  # the folder's classes, in label order
SIZE, DEPTH = 75, 0.125  # the shrunk network of the CLI run
SOURCE_CLASSES = 10  # the init weights' classifier: another size, so it starts fresh


def test_recipe_validates_and_starts_from_imagenet():
    config = configs.get_config("finetune").validate()
    assert "finetune" in configs.RECIPES and config.name == "finetune"
    assert config.init_weights == "imagenet"
    # the only shape Keras' published weights load into, and they have no auxiliary head
    assert (config.image_size, config.variant, config.depth_multiplier) == (299, "canonical", 1.0)
    assert config.include_aux is False and config.aux_loss_weight == 0.0
    assert 0 < config.head_epochs < config.epochs
    assert config.trainable_from not in ("all", "head")  # the top blocks, not everything
    assert config.model_name != configs.TrainConfig().model_name  # not the ImageNet model's path
    assert config.strategy == "one_device"


def test_trainable_from_names_the_top_blocks_of_the_network():
    from inception_keras import build_inception_v3
    from inception_keras.training.transfer import set_trainable_from

    config = configs.get_config("finetune")
    model = build_inception_v3(weights=None, input_shape=(SIZE, SIZE, 3), classes=5,
                               include_aux=config.include_aux, depth_multiplier=DEPTH)
    assert config.trainable_from in [layer.name for layer in model.layers]
    top = set_trainable_from(model, config.trainable_from)
    below = set_trainable_from(model, "mixed7")  # one 17x17 block more
    head = set_trainable_from(model, "head")
    assert set(head.trainable_layers) < set(top.trainable_layers) < set(below.trainable_layers)
    assert "predictions" in top.trainable_layers and model.layers[1].name in top.frozen_layers


def test_placeholder_dataset_fails_with_the_path_to_replace():
    from inception_keras.data import DataError, dataset_info

    config = configs.get_config("finetune")
    assert config.dataset.startswith("folder:")
    with pytest.raises(DataError, match="image folder '/path/to/photos' does not exist"):
        dataset_info(config.dataset, config.data_dir)
    docstring = importlib.import_module("configs.finetune").__doc__
    assert "python -m trainers.imagenet --config finetune --dataset folder:/path/to/photos" in \
        docstring


def test_tfds_dataset_is_one_override_away():
    config = apply_overrides(configs.get_config("finetune"), ["dataset=tfds:tf_flowers"])
    assert config.validate().dataset == "tfds:tf_flowers"


# --------------------------------------------------------------------------- the CLI, tiny run


def tiny_model(classes):
    from inception_keras import build_inception_v3

    config = configs.get_config("finetune")
    return build_inception_v3(weights=None, input_shape=(SIZE, SIZE, 3), classes=classes,
                              include_aux=config.include_aux, depth_multiplier=DEPTH)


def saved_init_weights(path, classes):
    """A tiny model's weights file whose batch norm is not Keras' fresh one (gamma 1, beta 0,
    mean 0, variance 1), so that a file that did not load shows."""
    import keras

    model = tiny_model(classes)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for weight in layer.weights:
                weight.assign(rng.uniform(0.8, 1.2, weight.shape).astype("float32"))
    model.save_weights(str(path))
    return str(path)


def weights_by_layer(model):
    return {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers
            if layer.weights}


def loaded(source):
    """The weights `source` (a weights file or a checkpoint) gives a fresh tiny 3-class model."""
    from inception_keras.training.transfer import load_init_weights

    model = tiny_model(len(CLASSES))
    load_init_weights(model, source, ema=False)
    return weights_by_layer(model)


def changed_layers(before, after):
    return {name for name in before
            if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))}


def run_finetune(tmp_path, *args, epochs=2, recipe="finetune"):
    """The recipe shrunk, from the working directory `tmp_path` (./run, ./exports)."""
    return run_trainer(tmp_path, "--config", recipe, "--strategy", "cpu",
                       "--precision", "float32", "--model_dir", "run", "--export_dir", "exports",
                       "--epochs", str(epochs), "--steps_per_epoch", "2", "--batch_size", "4",
                       "--set", f"image_size={SIZE}", "--set", f"depth_multiplier={DEPTH}",
                       "--set", "image_summaries=false", "--set", "head_epochs=1", *args,
                       timeout=900)


@pytest.mark.slow
def test_without_a_dataset_the_cli_names_the_placeholder(tmp_path):
    code, output = run_finetune(tmp_path)
    assert code == 2, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'/path/to/photos' does not exist" in errors[0], output[-3000:]
    assert "Traceback" not in output


def validated_epochs(output):
    """Epochs with a validation over the whole folder split (3 classes x 2 images)."""
    return [int(epoch) for epoch in re.findall(r"epoch (\d+)/\d+ done .*val_top1 [0-9.]+ .* on 6 "
                                               r"images", output)]


@pytest.mark.slow
def test_tiny_finetune_resumes_exports_the_folders_classes_and_keeps_frozen_layers(
        tmp_path, write_image_folder):
    import tensorflow as tf

    from inception_keras.training.transfer import set_trainable_from

    photos = write_image_folder(tmp_path / "photos", CLASSES, 6, 2)
    init_file = saved_init_weights(tmp_path / "init.weights.h5", SOURCE_CLASSES)  # other classes
    trainable_from = configs.get_config("finetune").trainable_from
    command = ["--dataset", "folder:photos", "--set", "init_weights=init.weights.h5"]  # relative

    # epoch 1 of 2 (the head-only epoch), stopped there as --epochs 1
    code, first = run_finetune(tmp_path, *command, epochs=1)
    assert code == 0, first[-4000:]
    assert "Traceback" not in first
    assert "init weights:" in first and "kept fresh" in first, first[-4000:]
    assert "trainable from head" in first
    # the same command for 2 epochs resumes: its own checkpoint, not the init weights again
    code, second = run_finetune(tmp_path, *command, epochs=2)
    assert code == 0, second[-4000:]
    assert "Traceback" not in second
    assert "resumed from epoch 1 step 2 (global step 2)" in second, second[-4000:]
    assert "init weights:" not in second
    assert f"trainable from {trainable_from}" in second
    assert validated_epochs(first) + validated_epochs(second) == [1, 2]

    # the export answers with the folder's class names
    export = tmp_path / "exports" / configs.get_config("finetune").model_name / "2"
    assert f"exported the model to {export}" in second
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    jpeg = (photos / "validation" / "rose" / "0.jpg").read_bytes()
    answer = serve(image_bytes=tf.constant([jpeg]))
    names = {n.decode() for n in answer["class_names"].numpy()[0]}
    assert names == set(CLASSES)

    # frozen layers: exactly the init file's weights (batch-norm statistics included) in the
    # checkpoint after the head-only epoch and in the final one; trainable ones changed
    init = loaded(init_file)
    state = tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints"))
    after_head_epoch, final = state.all_model_checkpoint_paths[0], state.model_checkpoint_path
    assert after_head_epoch != final
    summary = set_trainable_from(tiny_model(len(CLASSES)), trainable_from)
    trainable = set(summary.trainable_layers) - {"predictions"}
    assert trainable and "predictions" in summary.trainable_layers
    assert changed_layers(init, loaded(after_head_epoch)) == {"predictions"}
    assert changed_layers(init, loaded(final)) == trainable | {"predictions"}

    # --eval_only of the run (the README's command) scores its checkpoint, not the init weights
    # (whose classifier has another number of classes)
    code, evaluated = run_trainer(tmp_path, "--config", "finetune", "--eval_only",
                                  "--model_dir", "run")
    assert code == 0, evaluated[-4000:]
    assert f"restored {final} (step 4)" in evaluated
    final_line = [line for line in second.splitlines() if line.startswith("final evaluation")]
    assert final_line and final_line[0] in evaluated  # the same weights on the same images


@pytest.mark.slow
def test_the_augmented_recipe_trains_both_phases_with_its_policy_to_an_export(
        tmp_path, write_image_folder):
    """`finetune_augmented` is `finetune` plus its policy (the recipe matrix's case for it): the
    run says which augmentation runs, trains through the phase switch and exports."""
    from inception_keras.training.records.reports import augmentation_text

    write_image_folder(tmp_path / "photos", CLASSES, 6, 2)
    saved_init_weights(tmp_path / "init.weights.h5", len(CLASSES))  # the same classes
    recipe = configs.get_config("finetune_augmented")
    policy = augmentation_text(recipe)
    assert policy != augmentation_text(configs.get_config("finetune"))
    code, output = run_finetune(tmp_path, "--dataset", "folder:photos", "--set",
                                "init_weights=init.weights.h5", recipe="finetune_augmented")
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    assert f"augment     {policy}" in output
    assert "trainable from head" in output and f"trainable from {recipe.trainable_from}" in output
    assert validated_epochs(output) == [1, 2]
    assert (tmp_path / "exports" / recipe.model_name / "1" / "saved_model.pb").exists()
