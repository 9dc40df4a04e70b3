"""Version folders: next free number, no overwrite, atomic publish (even when killed)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hashlib
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from inception_keras.export import WARMUP_DIR, WARMUP_FILE, ExportError, export_saved_model, next_version
from inception_keras.export.versions import TEMP_PREFIX, existing_versions


@pytest.fixture(scope="module")
def model(tiny_two_head_model):
    return tiny_two_head_model()


def integer_folders(base):
    return sorted(name for name in os.listdir(base) if name.isdigit())


def test_exports_take_the_next_free_version(model, tmp_path):
    base = tmp_path / "inception_v3"
    assert next_version(base) == 1
    assert export_saved_model(model, tmp_path) == str(base / "1")
    (base / "7").mkdir()  # e.g. a version copied in from another machine
    (base / "9.old").mkdir()  # not a version: TF Serving loads integer folders only
    assert next_version(base) == 8
    assert export_saved_model(model, tmp_path) == str(base / "8")
    assert integer_folders(base) == ["1", "7", "8"]


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
    return tf.io.encode_jpeg(tf.zeros([40, 50, 3], tf.uint8)).numpy()


# Exports `argv[1]` (a .keras file) into `argv[2]` and SIGKILLs itself at a known point: the
# SavedModel is written into the temporary folder, its warm-up file not yet.
KILLED_EXPORT = textwrap.dedent("""
    import importlib, os, signal, sys
    import keras
    export = importlib.import_module("inception_keras.export.saved_model")

    def killed_while_writing(temp_dir, *args, **kwargs):
        print("killing myself in", temp_dir, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    assert callable(export.write_warmup_file)  # the step after the SavedModel is written
    export.write_warmup_file = killed_while_writing
    export.export_saved_model(keras.saving.load_model(sys.argv[1]), sys.argv[2])
    print("finished", flush=True)
""")


def tree_digest(folder):
    """{relative path: sha256} of every file under `folder`."""
    digests = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digests[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return digests


@pytest.mark.slow  # a subprocess that imports TensorFlow and exports
def test_a_killed_export_leaves_no_partial_version(model, tmp_path):
    base = tmp_path / "inception_v3"
    previous = export_saved_model(model, tmp_path)
    previous_files = tree_digest(previous)
    model_file = tmp_path / "model.keras"
    model.save(model_file)

    process = subprocess.run(
        [sys.executable, "-c", KILLED_EXPORT, str(model_file), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
    assert "finished" not in process.stdout
    temp_dir = process.stdout.split("killing myself in", 1)[1].strip()

    # The half-written export is in its temporary folder, which TF Serving's scan ignores.
    assert os.path.dirname(temp_dir) == str(base)
    assert os.path.basename(temp_dir).startswith(TEMP_PREFIX)
    assert os.path.isfile(os.path.join(temp_dir, "saved_model.pb"))
    assert not os.path.exists(os.path.join(temp_dir, WARMUP_DIR, WARMUP_FILE))
    assert sorted(os.listdir(base)) == sorted(["1", os.path.basename(temp_dir)])
    assert existing_versions(base) == [1] and integer_folders(base) == ["1"]
    assert tree_digest(previous) == previous_files  # the served version is untouched

    assert export_saved_model(model, tmp_path) == str(base / "2")
    assert sorted(os.listdir(base)) == ["1", "2"]  # the killed export's folder was cleaned up
    assert tree_digest(previous) == previous_files


def test_temp_folders_of_live_or_foreign_exports_are_kept(model, tmp_path):
    base = tmp_path / "inception_v3"
    base.mkdir()
    live = base / f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-abc"
    foreign = base / f"{TEMP_PREFIX}other-host-1-abc"
    live.mkdir(), foreign.mkdir()
    export_saved_model(model, tmp_path)
    assert sorted(os.listdir(base)) == sorted(["1", live.name, foreign.name])
