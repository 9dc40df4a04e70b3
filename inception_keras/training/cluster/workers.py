"""Multi-worker bookkeeping: scratch folders of non-chief workers, the restored step every worker
must share, and what a lost peer means.

- Saving a checkpoint is collective: every worker writes one, only the chief's is kept. The
  others write into a scratch folder `<tmp>/inception_keras_worker-<pid>-<random>` that is
  removed on every exit the process controls (success, error, SIGTERM); a folder left by a
  killed worker is removed by the next start on that host (its process is gone).
- After restoring, the workers compare their steps with one all-gather (the lowest and the
  highest must be the same). A worker whose `model_dir` is its own disk
  finds no checkpoint, or another one, than the chief: then every worker stops before training.
- A peer that dies (killed, out of memory, a preempted VM) makes the survivors' next collective
  fail; TensorFlow's coordination service ends them within seconds. Those errors become
  `PeerLost`: one line, a retryable exit status, and the instruction to restart every worker.
"""

import contextlib
import os
import shutil
import tempfile

import tensorflow as tf

from inception_keras.atomic import process_alive
from inception_keras.training.errors import PeerLost, TrainerError

SCRATCH_PREFIX = "inception_keras_worker-"
# What a survivor's collective or coordination call raises once a peer is gone.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.AbortedError, tf.errors.CancelledError, tf.errors.InternalError,
                tf.errors.UnknownError, tf.errors.FailedPreconditionError)


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def remove_stale_scratch_dirs(parent=None):
    """Removes scratch folders of this host's workers whose process is gone."""
    parent = parent or tempfile.gettempdir()
    for name in os.listdir(parent):
        pid = name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if name.startswith(SCRATCH_PREFIX) and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


@contextlib.contextmanager
def checkpoint_write_dir(checkpoint_dir, is_chief):
    """Where this worker writes its checkpoints: `checkpoint_dir` on the chief, a private
    scratch folder (removed when the block ends, however it ends) on the others."""
    if is_chief:
        yield checkpoint_dir
        return
    remove_stale_scratch_dirs()
    scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_restored_steps_agree(strategy, step):
    """Every worker restored `step`, or TrainerError on every worker (multi-worker only)."""
    if not is_multi_worker(strategy):
        return
    steps = ReplicaGather(strategy)([step])[:, 0]
    lowest, highest = int(steps.min()), int(steps.max())
    if lowest != highest:
        raise TrainerError(
            f"the workers restored different steps (lowest {lowest}, highest {highest}): "
            "model_dir must be storage every worker sees (gs://..., NFS), not each host's own "
            "disk; restart every worker with a shared --model_dir")


class ReplicaGather:
    """`gather(values)`: every replica's `values` (ints) as a numpy array [replicas, len(values)],
    with one collective (traced once per length)."""

    def __init__(self, strategy):
        self.strategy = strategy
        self._gather = tf.function(self._gather_fn)

    def _gather_fn(self, local):
        def replica_fn():
            mine = tf.identity(local)[tf.newaxis]  # a tensor of this replica's device
            return tf.distribute.get_replica_context().all_gather(mine, axis=0)

        return self.strategy.experimental_local_results(self.strategy.run(replica_fn))[0]

    def __call__(self, values):
        return self._gather(tf.constant(values, tf.int64)).numpy()


def peer_lost(error, strategy):
    """A PeerLost for `error` when it is a multi-worker run's lost-peer failure, else None."""
    if not is_multi_worker(strategy) or not isinstance(error, _PEER_ERRORS):
        return None
    return PeerLost(
        f"lost contact with another worker ({type(error).__name__}: {_detail(error)}); restart "
        "every worker with the same command: the run resumes from its newest checkpoint")


def _detail(error):
    """The informative line of a TF error (not 'Graph execution error:' or a node's source)."""
    lines = [line.strip() for line in (getattr(error, "message", None) or str(error)).splitlines()]
    skip = ("Graph execution error", "Detected at node", "File ", "[[")
    useful = [line for line in lines if line and not line.startswith(skip)]
    return (useful or ["no message"])[0][:200]
