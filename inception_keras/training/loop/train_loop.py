"""`TrainLoop`: from the trainer's step to the run's last, in calls, with actions at boundaries.

    loop = TrainLoop(trainer, train_dataset, actions=[checkpointer, validator, ...],
                     checkpointer=checkpointer, watch=SigtermWatch(strategy),
                     planner=CallPlanner(steps_per_execution, max_call_seconds), log=log,
                     recovery=None)  # or a Recovery (on_nonfinite=recover, recovery.py)
    last_validation = loop.run()

Each call runs whole steps and never crosses an epoch end or a checkpoint step, so an epoch is
exactly `steps_per_epoch` steps; its size comes from the `CallPlanner` (bounded in time) and,
with several workers, is agreed together with the SIGTERM verdict before the call. The phase of
the step decides what trains (`head_epochs`, then `trainable_from`); a change rebuilds the
compiled functions. A non-finite loss stops the run (`NonFiniteLoss`), or with a `Recovery`
(`on_nonfinite=recover`, recovery.py) goes back to the newest good checkpoint and on with the
batches after the failing call's (the iterator is not rewound); SIGTERM saves and stops
(`Preempted`).
"""

import time

from inception_keras.training.loop.actions import Boundary, is_finite
from inception_keras.training.errors import NonFiniteLoss, Preempted


class TrainLoop:
    def __init__(self, trainer, dataset, *, actions, checkpointer, watch, planner, log,
                 recovery=None):
        self.trainer, self.dataset, self.actions = trainer, dataset, actions
        self.recovery = recovery
        self.checkpointer, self.watch, self.planner, self.log = checkpointer, watch, planner, log
        config = trainer.config
        self.steps_per_epoch = config.steps_per_epoch
        self.total_steps = config.epochs * config.steps_per_epoch
        trainer.on_retrace.append(planner.retraced)

    def run(self):
        """Trains to the last step; returns the last epoch's validation results (or None)."""
        step = self.trainer.step
        iterator = iter(self.dataset)
        validation, loss = None, 0.0
        while step < self.total_steps:
            self._enter_phase(step)
            stop, count = self.watch.agree(self.planner.steps(self._call_limit(step)))
            if stop:
                raise self._preempted(step, loss)
            for action in self.actions:
                action.before_call(step, count)
            started = time.perf_counter()
            stats = self.trainer.train(iterator, count)
            self.planner.record(count, time.perf_counter() - started)
            step += count
            if not is_finite(stats):
                step = self._recover(step - count + 1, step)
                for action in self.actions:
                    action.after_recovery(step)
                continue
            loss = stats["loss"]
            boundary = Boundary(step, count, stats, self.steps_per_epoch)
            for action in self.actions:
                action.after_call(boundary)
            if boundary.end_of_epoch:
                for action in self.actions:
                    action.after_epoch(boundary)
                validation = boundary.validation
        return validation

    def _enter_phase(self, step):
        config = self.trainer.config
        epoch = step // self.steps_per_epoch
        wanted = "head" if epoch < config.head_epochs else config.trainable_from
        if wanted != self.trainer.trainable:
            self.log(self.trainer.set_trainable(wanted))

    def _call_limit(self, step):
        """Steps to the epoch's end or the next checkpoint step, whichever comes first."""
        limit = self.steps_per_epoch - step % self.steps_per_epoch
        every = self.trainer.config.checkpoint_every_steps
        if every:
            limit = min(limit, every - step % every)
        return limit

    def _recover(self, first, last):
        """The step restored after the non-finite call of steps first..last, or NonFiniteLoss."""
        stopped = (f"training stopped at step {last}: the loss or the weights became "
                   f"non-finite; the last good checkpoint is {self.checkpointer.latest}")
        if self.recovery is None:
            raise NonFiniteLoss(stopped)
        return self.recovery.recover(first, last, stopped)

    def _preempted(self, step, loss):
        path = self.checkpointer.save(step, loss) or self.checkpointer.latest
        return Preempted(f"SIGTERM: saved {path} at step {step}; rerun the same command to "
                         "resume")
