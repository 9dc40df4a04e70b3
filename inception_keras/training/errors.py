"""How a run ends when it does not finish: each kind with its exit status.

    TrainerError     a problem the user can fix (paths, data, strategy, resume conflicts): one
                     `error:` line, exit 2
    Preempted        SIGTERM (a preemption notice) was honoured after a checkpoint: exit 143
    NonFiniteLoss    the loss or the weights became inf/NaN; the last good checkpoint is kept:
                     exit 1
    PeerLost         a multi-worker peer died or became unreachable: exit 170, which Kubeflow's
                     `ExitCode` restart policy (and any supervisor that retries 128-255) retries
"""

import signal

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 1
EXIT_PREEMPTED = 128 + signal.SIGTERM  # what a shell reports for a job ended by SIGTERM
EXIT_PEER_LOST = 170  # retryable (128-255) and no signal's number, so it reads as ours


class TrainerError(Exception):
    """A failure the user can fix; the message is one line saying what and what to do."""

    exit_code = EXIT_USER_ERROR


class Preempted(Exception):
    """SIGTERM was honoured: `message` says what was saved and how to resume."""

    exit_code = EXIT_PREEMPTED


class NonFiniteLoss(Exception):
    """Training stopped on an inf/NaN loss or weight; the message names the last good checkpoint."""

    exit_code = EXIT_NON_FINITE


class PeerLost(Exception):
    """A worker of a multi-worker run is gone; every worker must be restarted to resume."""

    exit_code = EXIT_PEER_LOST
