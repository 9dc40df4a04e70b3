"""Model version folders as TF Serving sees them: `<model_base_path>/<integer version>/`.

A local export is written to a temporary folder beside the versions and renamed into place, so
TF Serving (which polls the base folder and only loads integer-named folders) never sees a
half-written version. Temporary names start with a dot and are never integers.

Object stores (`gs://`, and any other `tf.io.gfile` filesystem given as a URL) cannot rename a
folder atomically: on GCS a rename is a copy and a delete per object. There the version is
written to a local temporary folder and copied into place with `saved_model.pb` LAST: TF Serving
only loads a version whose `saved_model.pb` exists, and by then every other file is complete.
"""

import os
import shutil
import socket
import tempfile

import tensorflow as tf

from inception_keras.atomic import process_alive, publish_dir, staging_dir
from inception_keras.export.errors import ExportError
from inception_keras.paths import is_url

SAVED_MODEL_FILE = "saved_model.pb"

TEMP_PREFIX = ".incomplete-"


def existing_versions(base):
    """The integer versions present under `base` (folders TF Serving would load)."""
    if not tf.io.gfile.isdir(base):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base))  # GCS marks folders with /
    return sorted(
        int(name) for name in names
        if name.isdigit() and tf.io.gfile.isdir(os.path.join(base, name))
    )


def next_version(base):
    """The next free version number under the model base folder `base` (1 when empty)."""
    return max(existing_versions(base), default=0) + 1


def check_new_version(base, version):
    """Returns `version` if it is a valid, unused version number under `base`."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be a positive integer; received version={version!r}.")
    if version in existing_versions(base):
        raise ExportError(
            f"version {version} already exists in {base}; exports never overwrite a version. "
            f"Choose another version, or omit it to use the next free one ({next_version(base)})."
        )
    return version


def reserve_temp_dir(base):
    """A context: a fresh temporary folder inside `base` (a local `base`, after removing those of
    dead exports) or in this machine's temp folder (`base` on an object store).

    The folder is removed on leaving the block unless `publish` moved it into place.
    """
    prefix = f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-"
    if is_url(base):
        return staging_dir(tempfile.gettempdir(), prefix=prefix)
    remove_stale_temp_dirs(base)
    return staging_dir(base, prefix=prefix)


def remove_stale_temp_dirs(base):
    """Removes temporary folders left by killed exports of this host (their process is gone)."""
    host = socket.gethostname()
    for name in os.listdir(base):
        if not name.startswith(TEMP_PREFIX):
            continue
        owner, _, _random = name[len(TEMP_PREFIX):].rpartition("-")
        owner_host, _, pid = owner.rpartition("-")
        if owner_host == host and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def publish(temp_dir, base, version):
    """Moves the finished `temp_dir` to `base/<version>`: renamed locally (atomic on one
    filesystem), copied with saved_model.pb last on an object store."""
    final = os.path.join(base, str(version))
    check_new_version(base, version)
    if is_url(base):
        copy_version(temp_dir, final)
        return final
    try:
        publish_dir(temp_dir, final)
    except OSError as error:
        raise ExportError(
            f"could not move the export into {final} ({error.strerror}); another export may "
            "have taken that version at the same time. Export again."
        ) from None
    return final


def copy_version(local_dir, final):
    """Copies the local version folder `local_dir` to `final` (any tf.io.gfile filesystem),
    every file before `saved_model.pb`, which TF Serving needs to load a version."""
    files = []
    for folder, _, names in os.walk(local_dir):
        files += [os.path.relpath(os.path.join(folder, name), local_dir) for name in names]
    last = [name for name in files if name == SAVED_MODEL_FILE]
    for name in sorted(set(files) - set(last)) + last:
        target = os.path.join(final, name)
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(os.path.join(local_dir, name), target)


def model_base_dir(export_dir, name):
    """`<export_dir>/<name>`, created (any tf.io.gfile filesystem); ExportError for a name that
    is not a plain folder name or a place that cannot hold it."""
    plain = isinstance(name, str) and name.strip(".") and not set("/\\") & set(name)
    if not plain:
        raise ExportError(
            f"model_name must be a plain folder name such as 'inception_v3'; received {name!r}.")
    base = os.path.join(os.fspath(export_dir), name)
    try:
        tf.io.gfile.makedirs(base)
    except (tf.errors.OpError, OSError) as error:
        reason = getattr(error, "message", None) or str(error)
        raise ExportError(f"cannot create the model folder {base}: {reason}") from None
    return base
