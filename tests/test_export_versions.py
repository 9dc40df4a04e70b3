"""Version folders: next free number, no overwrite, atomic publish (even when killed)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import pytest

from inception_keras.export import ExportError, export_saved_model, next_version
from inception_keras.export.versions import TEMP_PREFIX

SIZE = 32


def small_classifier(classes=3):
    """A small two-output classifier shaped like `build_inception_v3`'s (fast to export)."""
    image = keras.Input((SIZE, SIZE, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
    outputs = {
        "predictions": keras.layers.Dense(classes, "softmax", name="predictions")(features),
        "aux_predictions": keras.layers.Dense(classes, "softmax", name="aux_predictions")(features),
    }
    return keras.Model(image, outputs)


@pytest.fixture(scope="module")
def model():
    return small_classifier()


def integer_folders(base):
    return sorted(name for name in os.listdir(base) if name.isdigit())


def test_exports_take_the_next_free_version(model, tmp_path):
    base = tmp_path / "inception_v3"
    assert next_version(base) == 1
    assert export_saved_model(model, tmp_path) == str(base / "1")
    assert export_saved_model(model, tmp_path) == str(base / "2")
    assert next_version(base) == 3
    assert export_saved_model(model, tmp_path, version=7) == str(base / "7")
    assert export_saved_model(model, tmp_path) == str(base / "8")
    assert integer_folders(base) == ["1", "2", "7", "8"]


def test_an_existing_version_is_refused_and_left_untouched(model, tmp_path):
    path = export_saved_model(model, tmp_path, model_name="m", version=1)
    before = {name: os.stat(os.path.join(path, name)).st_mtime_ns for name in os.listdir(path)}
    with pytest.raises(ExportError, match="version 1 already exists.*next free one \\(2\\)"):
        export_saved_model(model, tmp_path, model_name="m", version=1)
    after = {name: os.stat(os.path.join(path, name)).st_mtime_ns for name in os.listdir(path)}
    assert after == before
    assert os.listdir(tmp_path / "m") == ["1"]


@pytest.mark.parametrize("version", [0, -3, "2", 1.0, True])
def test_invalid_versions_are_refused(model, tmp_path, version):
    with pytest.raises(ExportError, match="version must be a positive integer"):
        export_saved_model(model, tmp_path, version=version)


def test_a_failed_export_leaves_nothing_behind(model, tmp_path):
    with pytest.raises(ExportError, match=r"warmup_images\[1\] is not a JPEG"):
        export_saved_model(model, tmp_path, warmup_images=[_jpeg(), b"junk"])
    assert os.listdir(tmp_path / "inception_v3") == []


def _jpeg():
    import tensorflow as tf

    return tf.io.encode_jpeg(tf.zeros([40, 50, 3], tf.uint8)).numpy()


KILLED_EXPORT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.path.insert(0, sys.argv[2])
    from test_export_versions import small_classifier
    from inception_keras.export import export_saved_model
    export_saved_model(small_classifier(), sys.argv[1])
    print("finished", flush=True)
""")


def test_a_killed_export_leaves_no_partial_version(model, tmp_path):
    base = tmp_path / "inception_v3"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, str(tmp_path), os.path.dirname(__file__)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        temp_dir = _wait_for_writing(base, process, timeout=240)
        process.send_signal(signal.SIGKILL)  # while the SavedModel is being written
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert os.path.isdir(temp_dir) and integer_folders(base) == []
    assert not os.path.basename(temp_dir).isdigit()

    assert export_saved_model(model, tmp_path) == str(base / "1")
    assert os.listdir(base) == ["1"]  # the killed export's folder was cleaned up


def _wait_for_writing(base, process, timeout):
    """The temporary folder of `process`'s export, once files appear in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the export finished before it could be killed"
        if base.is_dir():
            for name in os.listdir(base):
                folder = base / name
                if name.startswith(TEMP_PREFIX) and os.path.isdir(folder) and os.listdir(folder):
                    return folder
        time.sleep(0.002)
    raise AssertionError("the export never started writing")


def test_temp_folders_of_live_or_foreign_exports_are_kept(model, tmp_path):
    base = tmp_path / "inception_v3"
    base.mkdir()
    live = base / f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-abc"
    foreign = base / f"{TEMP_PREFIX}other-host-1-abc"
    live.mkdir(), foreign.mkdir()
    export_saved_model(model, tmp_path)
    assert sorted(os.listdir(base)) == sorted(["1", live.name, foreign.name])
