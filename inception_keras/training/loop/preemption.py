"""SIGTERM as a preemption notice, answered within a preemptible VM's grace period.

TPU VMs, spot/preemptible GPU VMs and Kubernetes send SIGTERM some seconds (often ~30) before
they kill a job. The handler only raises a flag; the trainer looks at it

- after every training call, then saves a checkpoint at that step and stops (`Preempted`);
- between the calls of an evaluation (a validation of ImageNet takes minutes), then stops: the
  epoch's checkpoint was written before its validation, and the resumed run validates again.

A training call runs `steps_per_execution` steps at most, but no more than fit in
`max_call_seconds` at the measured step time (`CallPlanner`), so a SIGTERM waits at most about
that long for the call in flight. With several workers every decision is taken together: one
all-gather per call of `[sigterm flag, steps]` gives every worker the same verdict (any flag)
and the same step count (the fewest), so they stop after the same step and save the same checkpoint.

Why not `tf.distribute.experimental.PreemptionCheckpointHandler`: its documentation limits it to
`MultiWorkerMirroredStrategy` and `TPUStrategy` (this trainer also runs `mirrored`, `one_device`
and `cpu`), it counts its own `run` calls rather than training steps, and it restores
checkpoints itself, around the trainer's fallback to the last readable and finite one.
"""

import signal
import threading

from inception_keras.training.cluster.workers import ReplicaGather, is_multi_worker


class SigtermWatch:
    """Create in the main thread; `requested()` is True once SIGTERM reached any worker. As a
    context manager it restores the previous SIGTERM handler when the block ends."""

    def __init__(self, strategy):
        self._flag = False
        self._gather = ReplicaGather(strategy) if is_multi_worker(strategy) else None
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        """Puts back the SIGTERM handler found at creation (for callers that go on)."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_sigterm(self, signum, frame):
        self._flag = True

    def agree(self, steps):
        """(stop, steps) that every worker shares: stop if any worker got SIGTERM; the fewest
        steps any worker proposed."""
        if self._gather is None:
            return self._flag, steps
        return combine_proposals(self._gather([int(self._flag), steps]))

    def requested(self):
        return self.agree(1)[0]


def combine_proposals(proposals):
    """Every worker's `[sigterm flag, steps]` (rows) -> the shared (stop, steps): stop when any
    worker got SIGTERM; the fewest steps, so the call fits the slowest worker's time bound."""
    flags, steps = zip(*((int(flag), int(count)) for flag, count in proposals))
    return any(flags), min(steps)


class CallPlanner:
    """Steps of the next training call: up to `steps_per_execution`, within `max_call_seconds`.

    The step time is measured on calls that did not trace (the first call after a (re)build
    compiles the step); before any such measurement a call runs one step.
    """

    def __init__(self, steps_per_execution, max_call_seconds):
        self.steps_per_execution = int(steps_per_execution)
        self.max_call_seconds = float(max_call_seconds)
        self.seconds_per_step = None
        self._traced = False

    def retraced(self):
        """The step functions were rebuilt: the next call's time includes tracing."""
        self._traced = False

    def record(self, steps, seconds):
        if self._traced:
            measured = seconds / max(steps, 1)
            previous = self.seconds_per_step
            self.seconds_per_step = measured if previous is None else 0.5 * (previous + measured)
        self._traced = True

    def steps(self, limit):
        """How many steps to run next, at most `limit` (the epoch's or a checkpoint's end)."""
        if self.seconds_per_step is None:
            fitting = 1
        else:
            fitting = int(self.max_call_seconds // max(self.seconds_per_step, 1e-9))
        return max(1, min(self.steps_per_execution, fitting, limit))
