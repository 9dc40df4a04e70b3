"""Watching a run train: a profiler trace of chosen steps, weight and gradient histograms.

    Profiler(log_dir, first=100, last=110)   # `profile_steps=100,110`
    Histograms(trainer, summaries, every=500)  # `histogram_every=500`

Both are loop actions (see actions.py). The profiler traces whole training calls: from the start
of the call that runs step `first` to the end of the one that runs step `last` (a call runs
several steps with `steps_per_execution`), into `<log_dir>/plugins/profile/<run>/`, where
TensorBoard's Profile tab (the `tensorboard-plugin-profile` package: `pip install -e
".[profile]"`) shows it. Histograms: every `every` steps, one histogram per trainable weight
(`weights/<path>`) and one of the all-reduced gradient norms of the last step, one value per
trainable weight (`gradients/norms`), with its global norm as a scalar (TensorBoard's `train` run).
"""

import numpy as np
import tensorflow as tf

from inception_keras.training.loop import progress
from inception_keras.training.loop.actions import Action


class Profiler(Action):
    """Traces the training calls that run steps `first` .. `last` (1-based)."""

    def __init__(self, log_dir, first, last, log):
        self.log_dir, self.first, self.last, self.log = log_dir, first, last, log
        self.running = self.done = False

    def before_call(self, step, steps):
        if not (self.running or self.done) and step + steps >= self.first and step < self.last:
            tf.profiler.experimental.start(self.log_dir)
            self.running = True

    def after_call(self, boundary):
        if self.running and boundary.step >= self.last:
            self.stop(boundary.step)

    def stop(self, step):
        """Ends the trace (also when the run ends or stops before `last`)."""
        if self.running:
            tf.profiler.experimental.stop()
            self.running, self.done = False, True
            self.log(f"profiled the training calls up to step {step} into "
                     f"{self.log_dir}/plugins/profile (TensorBoard's Profile tab)")


class Histograms(Action):
    """Weight and gradient-norm histograms every `every` steps."""

    def __init__(self, trainer, summaries, every):
        self.trainer, self.summaries, self.every = trainer, summaries, every

    def after_call(self, boundary):
        step = boundary.step
        if (step - boundary.steps) // self.every == step // self.every:
            return  # no multiple of `every` in this call
        variables = self.trainer.model.trainable_variables
        values = {f"weights/{v.path}": v.numpy() for v in variables}
        norms = boundary.stats.get("gradient_norms")
        if norms is not None:
            values["gradients/norms"] = norms
            self.summaries.scalars(
                progress.TRAIN, {"gradients/global_norm": float(np.sqrt(np.sum(norms ** 2)))},
                step)
        self.summaries.histograms(progress.TRAIN, values, step)
