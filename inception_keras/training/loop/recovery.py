"""`on_nonfinite=recover`: after a non-finite loss, the newest good checkpoint and on.

TF Model Garden's trainer does this (its recovery "restores the last good checkpoint" when the
loss is NaN, up to `recovery_max_trials` times), as PaLM's authors did by hand for loss spikes
(Chowdhery et al. 2022, section 5.1: "restart training from a checkpoint roughly 100 steps
before the spike started, and skip roughly 200-500 data batches"). When the loss of the call
that ran steps F..L (1-based) is inf or NaN:

1. the newest readable checkpoint of the run is restored, step S < F (none is ever written from
   a non-finite state): weights, optimizer slots, EMA, loss scale and the step counter, which
   goes back to S, and with it the learning rate;
2. the batches that failed are skipped: the training input is one stream per process and is
   not rewound, so the next call takes the batch after the failing call's last one. The batches
   drawn for steps S+1..L are not trained on again; steps S+1..L train again on new batches;
3. one line says what was restored, which steps' batches are skipped and "recovery k of M";
   TensorBoard gets `stability/recoveries` = k at step L (run `train`); run_state.json records it.

`max_recoveries` (M) counts over the whole run: the list lives in run_state.json, so a restarted
run continues the count (`--set max_recoveries=N` raises it). Past it, or with no checkpoint to
go back to, the run stops with `NonFiniteLoss` (exit 1), as `on_nonfinite=stop` does at once.
A restarted process starts its input stream afresh, as every resume does (its position is not
part of a checkpoint).

Every worker takes the same decision: the loss the loop checks is all-reduced over every replica
inside the step, so every worker sees the same inf or NaN; every worker read the same count from
the shared run_state.json and counts the same recoveries; all restore from the shared model_dir
and compare the steps they restored (`check_restored_steps_agree`) before going on together.
"""

from inception_keras.training.cluster import workers
from inception_keras.training.errors import NonFiniteLoss


class Recovery:
    """Restores the newest good checkpoint after a non-finite call, `limit` times per run."""

    def __init__(self, trainer, record, summaries, log, *, limit, strategy):
        self.trainer, self.record, self.summaries, self.log = trainer, record, summaries, log
        self.limit, self.strategy = limit, strategy

    def recover(self, first, last, stopped):
        """After the non-finite call of steps `first`..`last`: the step restored.
        `stopped` is the message of the `NonFiniteLoss` raised when it cannot recover."""
        done = list(self.record.state.recoveries)
        if len(done) >= self.limit:
            raise NonFiniteLoss(
                f"{stopped}; {len(done)} of max_recoveries={self.limit} recoveries spent over the "
                "run (run_state.json): the cause persists, look at it before "
                "--set max_recoveries=N allows more")
        path = self.trainer.restore()
        if path is None:
            raise NonFiniteLoss(f"{stopped}; no checkpoint to recover from yet")
        step = self.trainer.step
        workers.check_restored_steps_agree(self.strategy, step)
        count = len(done) + 1
        self.record.update(recoveries=[*done, {"failed_steps": [first, last],
                                               "restored_step": step, "checkpoint": path}])
        self.summaries.scalars("train", {"stability/recoveries": count}, last)
        self.log(f"non-finite loss in steps {first}-{last}: restored {path} (step {step}); the "
                 f"batches drawn for steps {step + 1}-{last} are skipped, training goes on from "
                 f"step {step + 1} with the batches after them (recovery {count} of "
                 f"{self.limit})")
        return step
