"""All-or-nothing writes: a reader sees the old state or the complete new one, never a half.

Both helpers write under a temporary name beside the destination and rename it into place:
`write_text` for one file (through `tf.io.gfile`, so `gs://` paths work), `staging_dir` and
`publish_dir` for a whole folder (local: a folder rename is atomic on one filesystem only).
Used by the saved `config.json` of a run, the SavedModel version folders of an export and the
smoke dataset.
"""

import contextlib
import os
import shutil
import tempfile

import tensorflow as tf


def write_text(path, text):
    """Writes `text` to `path` via `<path>.tmp-<pid>` and a rename that replaces any old file."""
    temp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(temp, path, overwrite=True)


@contextlib.contextmanager
def staging_dir(parent, prefix):
    """A new empty folder `parent/<prefix><random>` to fill, then to `publish_dir`.

    On leaving the block the folder is removed if it is still there (the writing failed, or it
    was not published), so only a killed process leaves one behind.
    """
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)  # gone already once published


def publish_dir(staging, final):
    """Renames the finished `staging` folder to `final` in one step (`OSError` if it cannot)."""
    os.rename(staging, final)


def process_alive(pid):
    """True while process `pid` of this host runs (its staging folders are not stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
