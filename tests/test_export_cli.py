"""`python -m inception_keras.export`: exports a .keras file; user errors exit 2 in one line."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import pytest
from conftest import run_module
import tensorflow as tf

from inception_keras.export.__main__ import main


def run_cli(*args):
    return run_module("inception_keras.export", *args)


@pytest.fixture(scope="module")
def keras_file(tiny_two_head_model, tmp_path_factory):
    """A two-output classifier (like the trainer's model) saved as .keras."""
    path = tmp_path_factory.mktemp("model") / "model.keras"
    tiny_two_head_model(classes=3).save(path)
    return str(path)


@pytest.mark.slow  # two subprocesses that import TensorFlow
def test_cli_exports_a_keras_file_with_folder_class_names_then_refuses_that_version(
    keras_file, tmp_path
):
    for name in ("cherry", "apple", "banana"):
        (tmp_path / "train" / name).mkdir(parents=True)
    export_dir = tmp_path / "saved_models"
    result = run_cli("--model", keras_file, "--export_dir", str(export_dir), "--model_name", "fruit",
                     "--top_k", "2", "--class_names", str(tmp_path / "train"))
    assert result.returncode == 0, result.stderr[-2000:]
    path = str(export_dir / "fruit" / "1")
    assert result.stdout.strip().splitlines()[-1] == path
    serve = tf.saved_model.load(path).signatures["serving_default"]
    assert serve.structured_outputs["class_names"].shape.as_list() == [None, 2]
    jpeg = tf.io.encode_jpeg(tf.zeros([20, 30, 3], tf.uint8))
    names = serve(image_bytes=tf.stack([jpeg]))["class_names"].numpy()[0]
    assert set(names) <= {b"apple", b"banana", b"cherry"}

    again = run_cli("--model", keras_file, "--export_dir", str(export_dir), "--model_name", "fruit",
                    "--version", "1")
    assert again.returncode == 2
    assert "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines()[-1].startswith("error: version 1 already exists")
    assert os.listdir(export_dir / "fruit") == ["1"]


def test_a_missing_model_file_exits_2_with_one_line(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nope.keras"), "--export_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be an existing .keras file" in err


def test_a_corrupt_model_file_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert main(["--model", str(tmp_path / "broken.keras"), "--export_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: could not load")


def test_bad_arguments_exit_2_with_one_line(keras_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", keras_file, "--version", "two"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--version: invalid int value" in err
