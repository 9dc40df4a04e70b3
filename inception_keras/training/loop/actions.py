"""The policies of the training loop, as objects the loop calls at its boundaries.

Before every training call the loop calls each action's `before_call(step, steps)`; after it,
it builds a `Boundary` and calls each `after_call`; after the last call of an epoch it then
calls each `after_epoch`, in the order given. After a recovery from a non-finite loss
(recovery.py) it calls each `after_recovery(step)` with the step restored.

    Checkpointer     every `checkpoint_every_steps` steps, and at each epoch end BEFORE the
                     validation (a validation that fails or is preempted loses no training)
    Validator        every `eval_every_epochs` epochs and after the last; SIGTERM is honoured
                     between its calls; records the validated step in run_state.json
    KeepBest         `keep_best=val_top1`: the checkpoint of the best validation, kept apart
                     (checkpoints/best/), which rotation never deletes
    CorruptRecords   how many records the pipelines dropped in the epoch
    ProgressLog      a progress line every `log_every_steps` and the epoch line, TensorBoard
    (observe.py)     Profiler (`profile_steps`), Histograms (`histogram_every`)

An action may set `boundary.validation` for those after it (the epoch line shows it).
"""

import dataclasses
import math
from typing import Optional

from inception_keras import data
from inception_keras.training.loop import checkpoints, progress
from inception_keras.training.errors import Preempted
from inception_keras.training.step.steps import EvaluationStopped


@dataclasses.dataclass
class Boundary:
    """Where the loop stands after a training call."""

    step: int  # steps taken, this call's included
    steps: int  # steps this call ran
    stats: dict  # this call's sums (steps.TRAIN_SUMS): loss, correct top-1, examples, plain CE
    steps_per_epoch: int
    validation: Optional[dict] = None

    @property
    def end_of_epoch(self):
        return self.step % self.steps_per_epoch == 0

    @property
    def epoch(self):
        """The epoch the last step belongs to (1-based)."""
        return (self.step - 1) // self.steps_per_epoch + 1


class Action:
    def before_call(self, step, steps):
        pass

    def after_call(self, boundary):
        pass

    def after_epoch(self, boundary):
        pass

    def after_recovery(self, step):
        pass


class Checkpointer(Action):
    """Saves checkpoints through `manager` (a tf.train.CheckpointManager) when due; never from a
    non-finite loss or weights, so the last good checkpoint stays the newest."""

    def __init__(self, trainer, manager):
        self.trainer, self.manager = trainer, manager
        self.every = trainer.config.checkpoint_every_steps
        self.saved_step = None

    def after_call(self, boundary):
        if self.every and boundary.step % self.every == 0 and not boundary.end_of_epoch:
            self.save(boundary.step, boundary.stats["loss"])

    def after_epoch(self, boundary):
        self.save(boundary.step, boundary.stats["loss"])

    def save(self, step, loss=0.0):
        """Checkpoint `step` unless it was just saved; its path (or None if not finite)."""
        if self.saved_step == step:
            return self.manager.latest_checkpoint
        self.trainer.agree_on_statistics()  # the checkpoint keeps the mean over replicas
        path = checkpoints.save_if_finite(self.manager, step, self.trainer.model, loss)
        if path:
            self.saved_step = step
        return path

    def after_recovery(self, step):
        self.saved_step = None  # the steps after `step` are trained and saved again

    @property
    def latest(self):
        return self.manager.latest_checkpoint


class Validator(Action):
    """Scores the validation split at the epoch ends the config asks for."""

    def __init__(self, trainer, dataset, *, watch, record, summaries, log):
        self.trainer, self.dataset, self.watch = trainer, dataset, watch
        self.record, self.summaries, self.log = record, summaries, log
        config = trainer.config
        self.every, self.epochs = config.eval_every_epochs, config.epochs

    def due(self, epoch):
        return bool(self.every) and (epoch % self.every == 0 or epoch == self.epochs)

    def after_epoch(self, boundary):
        if self.due(boundary.epoch):
            boundary.validation = self.validate(boundary.step, boundary.epoch)

    def catch_up(self, step, steps_per_epoch):
        """After a resume at an epoch end whose validation was interrupted: validate it now.
        Returns the results, or None when nothing was missing."""
        if not step or step % steps_per_epoch or self.record.state.validated_step >= step:
            return None
        epoch = step // steps_per_epoch
        if not self.due(epoch):
            return None
        results = self.validate(step, epoch)
        self.log(f"epoch {epoch}/{self.epochs} validation (interrupted before, run again): "
                 f"{progress.validation_text(results)}")
        return results

    def validate(self, step, epoch):
        self.log(f"epoch {epoch}/{self.epochs}: validating the weights of step {step}")
        try:
            results = self.trainer.evaluate(self.dataset, should_stop=self.watch.requested)
        except EvaluationStopped:
            raise Preempted(
                f"SIGTERM during the validation of epoch {epoch}: its checkpoint (step {step}) "
                "was saved before it; rerun the same command to validate it and continue") \
                from None
        self.summaries.evaluation(progress.VALIDATION, results, step)
        self.record.update(validated_step=step)
        return results


class KeepBest(Action):
    """Keeps the checkpoint of the best validation top-1 of the run in `manager`'s folder (its
    own CheckpointManager: the newest-N rotation never touches it); run_state.json says which."""

    def __init__(self, trainer, manager, record, log):
        self.trainer, self.manager, self.record, self.log = trainer, manager, record, log

    def after_epoch(self, boundary):
        if boundary.validation is not None:
            self.consider(boundary.step, boundary.validation)

    def consider(self, step, validation):
        top1, best = float(validation["top1"]), self.record.state.best
        self.record.update(last_validation={"step": step, "val_top1": top1})
        if best is not None and top1 <= best["val_top1"]:
            return
        self.trainer.agree_on_statistics()
        path = self.manager.save(checkpoint_number=step)
        self.record.update(best={"step": step, "val_top1": top1, "path": path})
        self.log(f"best val_top1 so far: {top1:.4f} at step {step}, kept as {path}")


class CorruptRecords(Action):
    """Once per epoch: how many corrupt or undecodable records the pipelines dropped."""

    def __init__(self, log):
        self.log, self.seen = log, data.corrupt_records_seen()

    def after_epoch(self, boundary):
        total = data.corrupt_records_seen()
        if total > self.seen:
            self.log(f"epoch {boundary.epoch}: dropped {total - self.seen} corrupt or "
                     f"undecodable records ({total} in total)")
        self.seen = total


class ProgressLog(Action):
    """Progress lines and TensorBoard scalars every `log_every_steps` steps and at epoch ends."""

    def __init__(self, trainer, summaries, log, start_step):
        self.trainer, self.summaries, self.log = trainer, summaries, log
        config = trainer.config
        self.every, self.epochs = config.log_every_steps, config.epochs
        self.window, self.epoch_window = progress.Window(), progress.Window()
        self.last_logged, self.timed = start_step, False

    def after_call(self, boundary):
        self.window.add(boundary.stats, boundary.steps)
        self.epoch_window.add(boundary.stats, boundary.steps)
        if boundary.step - self.last_logged >= self.every or boundary.end_of_epoch:
            self._progress(boundary.step, boundary.steps_per_epoch)

    def after_epoch(self, boundary):
        self.log(progress.epoch_line(boundary.epoch, self.epochs, self.epoch_window.means(),
                                     boundary.validation))
        self.epoch_window.reset()
        self.window.reset()
        self.timed = False  # the next window would include this epoch end's work

    def _progress(self, step, steps_per_epoch):
        trainer, means = self.trainer, self.window.means()
        skipped = int(trainer.counters.skipped.numpy())
        learning_rate = trainer.learning_rate_at(step - 1)  # what the last step used
        self.log(progress.step_line(step, steps_per_epoch, self.epochs, means, learning_rate,
                                    skipped, timed=self.timed))
        self.summaries.scalars(progress.TRAIN, {
            "metrics/loss": means["loss"], "metrics/cross_entropy": means["cross_entropy"],
            "metrics/top1": means["top1"], "optimizer/learning_rate": learning_rate,
            "stability/skipped_steps": skipped}, step)
        if self.timed:
            self.summaries.scalars(
                progress.TRAIN, {f"perf/{k}": means[k] for k in ("step_time_s", "images_per_s")},
                step)
        self.window.reset()
        self.timed, self.last_logged = True, step

    def after_recovery(self, step):
        """The restored step: the windows forget the steps that were undone."""
        self.window.reset()
        self.epoch_window.reset()
        self.timed, self.last_logged = False, step


def is_finite(stats):
    return math.isfinite(stats["loss"])
