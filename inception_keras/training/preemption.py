"""SIGTERM as a preemption notice: finish the step in flight, save, exit; rerun to resume.

TPU VMs, spot/preemptible GPU VMs and Kubernetes send SIGTERM some seconds before they kill a
job. The handler only raises a flag; the trainer checks it after every `tf.function` call.
With several workers, `requested()` sums the flags of all replicas (one scalar all-reduce),
so every worker stops after the same step and saves the same checkpoint.

Why not `tf.distribute.experimental.PreemptionCheckpointHandler`: its documentation limits it to
`MultiWorkerMirroredStrategy` and `TPUStrategy` (this trainer also runs `mirrored`, `one_device`
and `cpu`), it counts its own `run` calls rather than training steps (one call runs
`steps_per_execution` steps here) and it restores checkpoints itself, around the trainer's
fallback to the last readable and finite one.
"""

import signal
import threading

import tensorflow as tf

EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a job ended by SIGTERM


class SigtermWatch:
    """Install in the main thread; `requested()` is True once SIGTERM reached any worker."""

    def __init__(self, strategy):
        self._flag = False
        self._strategy = strategy
        self._multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self._agree = tf.function(self._agree_fn) if self._multi_worker else None
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame):
        self._flag = True

    def _agree_fn(self, flag):
        def replica_fn():
            local = tf.identity(flag)  # a value of this replica's device, as collectives need
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)

        return self._strategy.experimental_local_results(self._strategy.run(replica_fn))[0]

    def requested(self):
        if not self._multi_worker:
            return self._flag
        return bool(self._agree(tf.constant(float(self._flag))) > 0)
