"""Paths as the user typed them: local (relative or absolute) or any `tf.io.gfile` filesystem.

    resolve("runs/smoke")        # -> "/home/me/project/runs/smoke" (relative: the current dir)
    resolve("gs://bucket/runs")  # -> unchanged: a filesystem URL
    check_writable_dir("saved_models", "--export_dir")   # PathError naming the flag if not

Every path of the product goes through `tf.io.gfile` (checkpoints, config, TensorBoard, exports,
data), so `gs://` (and `ram://`, TensorFlow's in-process filesystem, in tests) work wherever a
local folder does. Relative local paths are resolved once, when a run starts, so a run records
where its files really are. Importing this module does not import TensorFlow (configs/ uses it).
"""

import os
import socket


class PathError(ValueError):
    """A path the user gave cannot be used; the message names it and says why."""


def is_url(path):
    """True for a filesystem URL such as `gs://bucket/x` or `ram://x` (not a local path)."""
    return "://" in str(path)


def resolve(path):
    """`path` with `~` expanded and made absolute against the current directory; URLs as they
    are; None stays None."""
    if path is None or is_url(path):
        return path
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def check_writable_dir(path, what):
    """Creates folder `path` if needed and writes and removes a probe file in it.

    Raises PathError "<what> <path> is not a writable folder (<reason>)" otherwise: a file in
    the way, no permission, a bucket that does not exist.
    """
    import tensorflow as tf  # here, so that configs/ can resolve paths without TensorFlow

    probe = os.path.join(path, f".write-probe-{socket.gethostname()}-{os.getpid()}")
    try:
        tf.io.gfile.makedirs(path)
        with tf.io.gfile.GFile(probe, "w") as file:
            file.write("probe")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as error:
        reason = getattr(error, "message", None) or str(error) or type(error).__name__
        raise PathError(f"{what} {path} is not a writable folder ({reason.strip().splitlines()[0]}); "
                        "pass a folder this process can create and write") from None
