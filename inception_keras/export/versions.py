"""Model version folders as TF Serving sees them: `<model_base_path>/<integer version>/`.

An export is written to a temporary folder beside the versions and renamed into place, so TF
Serving (which polls the base folder and only loads integer-named folders) never sees a
half-written version. Temporary names start with a dot and are never integers.
"""

import os
import shutil
import socket

from inception_keras.atomic import process_alive, publish_dir, staging_dir
from inception_keras.export.errors import ExportError

TEMP_PREFIX = ".incomplete-"


def existing_versions(base):
    """The integer versions present under `base` (folders TF Serving would load)."""
    if not os.path.isdir(base):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base)
        if name.isdigit() and os.path.isdir(os.path.join(base, name))
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
    """A context: a fresh temporary folder inside `base`, after removing those of dead exports.

    The folder is removed on leaving the block unless `publish` moved it into place.
    """
    remove_stale_temp_dirs(base)
    return staging_dir(base, prefix=f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-")


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
    """Renames the finished `temp_dir` to `base/<version>` (atomic on one filesystem)."""
    final = os.path.join(base, str(version))
    check_new_version(base, version)
    try:
        publish_dir(temp_dir, final)
    except OSError as error:
        raise ExportError(
            f"could not move the export into {final} ({error.strerror}); another export may "
            "have taken that version at the same time. Export again."
        ) from None
    return final
