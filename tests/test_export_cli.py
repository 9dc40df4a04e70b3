"""`python -m inception_keras.export`: exports a .keras file; user errors exit 2 in one line."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess
import sys

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
    assert err.count("\n") == 1 and "must be an existing .keras file or a training run" in err


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


def test_a_format_whose_package_is_missing_is_refused_before_any_work(
    keras_file, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` now fails for real
    assert main(["--model", keras_file, "--export_dir", str(tmp_path / "out"),
                 "--formats", "savedmodel,onnx", "--dataset", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: export format(s) onnx need tf2onnx, not installed: ")
    assert 'pip install -e ".[deploy]"' in err
    assert not (tmp_path / "out").exists()  # refused before the SavedModel


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--formats", "savedmodel,tflite"], "error: unknown export format(s) 'tflite'; choose "
         "from savedmodel, litert, litert_float16, litert_int8, onnx"),
        (["--formats", "litert"], "error: --formats litert: file formats need images"),
        (["--formats", "onnx", "--dataset", "no_such_dataset"], "error: --dataset no_such_dataset:"),
        (["--formats", "litert_int8", "--dataset", "smoke", "--calibration_examples", "0"],
         "error: calibration_examples must be a positive integer; received 0."),
    ],
)
def test_bad_formats_or_missing_data_exit_2_with_one_line(
    arguments, message, keras_file, tmp_path, capsys
):
    assert main(["--model", keras_file, "--export_dir", str(tmp_path), *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message), err
    assert os.listdir(tmp_path) == []


HIDE_AND_RUN = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # as if the package were not installed
sys.argv = ["inception_keras.export", *sys.argv[2:]]
runpy.run_module("inception_keras.export", run_name="__main__")
"""


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_missing_runtimes_are_named_by_the_cli_in_a_process_without_them(keras_file, tmp_path):
    result = subprocess.run(  # -c: this checkout is imported, as with `python -m`
        [sys.executable, "-c", HIDE_AND_RUN, "onnxruntime,ai_edge_litert,ai_edge_litert.interpreter",
         "--model", keras_file, "--export_dir", str(tmp_path / "out"),
         "--formats", "litert_int8,onnx", "--dataset", "smoke"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        'error: export format(s) litert_int8, onnx need ai-edge-litert and onnxruntime, not '
        'installed: pip install -e ".[deploy]" (or pip install ai-edge-litert onnxruntime).'
    )
    assert not (tmp_path / "out").exists()
