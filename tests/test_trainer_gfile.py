"""A run whose every folder is on a `tf.io.gfile` filesystem: `ram://` (TensorFlow's in-process
filesystem, standing in for gs://), so the run is in this process. It trains, resumes with more
epochs, evaluates and exports through the library entries the CLI calls; the data comes from a
smoke set built on ram:// too. An export to such a filesystem copies `saved_model.pb` last."""

import json

import keras
import pytest
import tensorflow as tf

from configs import get_config
from inception_keras.data import ensure_smoke_dataset
from inception_keras.training import entries

RUN, EXPORTS, DATA = "ram://gfile_test/run", "ram://gfile_test/exports", "ram://gfile_test/smoke"


@pytest.fixture
def restore_dtype_policy():
    policy = keras.mixed_precision.dtype_policy()
    yield
    keras.mixed_precision.set_dtype_policy(policy)


def config(epochs):
    return get_config("smoke").replace(
        model_dir=RUN, export_dir=EXPORTS, data_dir=DATA, epochs=epochs, steps_per_epoch=2,
        global_batch_size=8, image_size=75, depth_multiplier=0.125, eval_steps=1,
        image_summaries=False, precision="float32", ema_momentum=0.9).validate()


def text(path):
    with tf.io.gfile.GFile(path) as file:
        return file.read()


@pytest.mark.slow
def test_train_resume_evaluate_and_export_on_a_gfile_filesystem(restore_dtype_policy,
                                                                monkeypatch):
    ensure_smoke_dataset(DATA, train_per_class=2, validation_per_class=1)
    lines = []
    entries.train_run(config(epochs=1), log=lines.append)
    assert tf.io.gfile.exists(f"{RUN}/checkpoints/ckpt-2.index")
    assert f"exported the model to {EXPORTS}/inception_v3/1" in lines

    lines.clear()
    entries.train_run(config(epochs=2), log=lines.append)  # more epochs: it continues
    assert any(line.startswith("resumed from epoch 1 step 2 (global step 2)") for line in lines)
    assert "training done: 2 steps" in " ".join(lines)
    assert f"exported the model to {EXPORTS}/inception_v3/2" in lines
    state = json.loads(text(f"{RUN}/run_state.json"))
    assert state["trained_step"] == 4 and state["exported"]["step"] == 4

    lines.clear()
    entries.evaluate_run(config(epochs=2), from_run=True, log=lines.append)
    record = json.loads(text(f"{RUN}/eval.json"))
    assert record["step"] == 4 and record["weights"] == "EMA weights"

    copied = []  # the real copy, recorded: the order in which the version's files appear
    real_copy = tf.io.gfile.copy
    monkeypatch.setattr(tf.io.gfile, "copy",
                        lambda src, dst, overwrite=False: (copied.append(dst),
                                                           real_copy(src, dst, overwrite)))
    entries.export_run(config(epochs=2), log=lines.append)
    version = f"{EXPORTS}/inception_v3/3"
    assert copied[-1] == f"{version}/saved_model.pb"
    assert f"{version}/variables/variables.index" in copied[:-1]
    assert f"{version}/assets.extra/tf_serving_warmup_requests" in copied[:-1]
    assert sorted(tf.io.gfile.listdir(f"{EXPORTS}/inception_v3")) in (
        ["1", "2", "3"], ["1/", "2/", "3/"])
    served = tf.saved_model.load(version).signatures["predict_images"]
    probabilities = served(images=tf.zeros([1, 75, 75, 3]))["probabilities"]
    assert probabilities.shape == (1, 10)


@pytest.mark.slow
def test_export_cli_reads_a_ram_model_and_class_names_and_writes_a_ram_version(
        tiny_two_head_model):
    from inception_keras.export.__main__ import main as export_main

    model = tiny_two_head_model(classes=3, size=32)
    keras.saving.save_model(model, "ram://gfile_cli/model.keras")
    with tf.io.gfile.GFile("ram://gfile_cli/names.txt", "w") as file:
        file.write("cat\ndog\nfox\n")
    code = export_main(["--model", "ram://gfile_cli/model.keras", "--export_dir",
                        "ram://gfile_cli/exports", "--class_names", "ram://gfile_cli/names.txt"])
    assert code == 0
    version = "ram://gfile_cli/exports/inception_v3/1"
    assert tf.io.gfile.exists(f"{version}/saved_model.pb")
    serve = tf.saved_model.load(version).signatures["serving_default"]
    jpeg = tf.io.encode_jpeg(tf.zeros([40, 40, 3], tf.uint8))
    names = serve(image_bytes=tf.stack([jpeg]))["class_names"].numpy()[0]
    assert sorted(n.decode() for n in names) == ["cat", "dog", "fox"]
