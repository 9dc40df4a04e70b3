"""The continuous evaluator: `--eval_only --watch`, a job beside the training job.

    python -m trainers.imagenet --eval_only --watch --model_dir runs/tpu --strategy cpu

It evaluates every checkpoint of the run as it appears, oldest first, one at a time, with the
run's model and validation split (its EMA weights when the run has EMA), and

- writes TensorBoard scalars `metrics/top1`, `metrics/top5`, `metrics/cross_entropy` at each
  checkpoint's step into its own subfolder, `<model_dir>/tensorboard/watch` (a run of its own in
  TensorBoard, overlaid on the trainer's `validation` run: the same tags), and its results to
  its own file,
  `<model_dir>/watch_results.json` (a list, rewritten atomically; a restarted watcher skips what
  it already evaluated). It writes nothing else: not into `checkpoints/`, not the trainer's
  files, and it takes no lock;
- skips a checkpoint that rotation deleted before it got to it, or while it read it;
- exits once the run is finished (`run_state.json` records its last step) and that step is
  evaluated, or after `watch_timeout` seconds (default one hour) without a new checkpoint.

The watcher follows the checkpoint index (`checkpoints/checkpoint`), which the trainer rewrites
atomically after each save, so it never sees half a checkpoint.
"""

import json
import os
import time

import tensorflow as tf

from inception_keras import atomic
from inception_keras.training.loop import progress
from inception_keras.training.errors import TrainerError
from inception_keras.training.records.run_state import RunState

RESULTS_FILE = "watch_results.json"
POLL_SECONDS = 2.0


def checkpoint_step(path):
    return int(path.rsplit("-", 1)[1])


class Watcher:
    """Evaluates the new checkpoints of `trainer`'s run with `dataset` until the run is over."""

    def __init__(self, trainer, dataset, log, poll_seconds=POLL_SECONDS):
        self.trainer, self.dataset, self.log = trainer, dataset, log
        self.poll_seconds = poll_seconds
        model_dir = trainer.config.model_dir.rstrip("/")
        self.model_dir = model_dir
        self.results_path = f"{model_dir}/{RESULTS_FILE}"
        self.summaries = progress.Summaries(f"{model_dir}/tensorboard")
        self.results = self._load_results()
        self.done = {record["step"] for record in self.results}

    def _load_results(self):
        if not tf.io.gfile.exists(self.results_path):
            return []
        with tf.io.gfile.GFile(self.results_path) as file:
            return json.loads(file.read())

    def pending(self):
        """Checkpoints of the index not evaluated yet, oldest first."""
        state = tf.train.get_checkpoint_state(self.trainer.checkpoint_dir)
        paths = list(state.all_model_checkpoint_paths) if state else []
        return sorted((p for p in paths if checkpoint_step(p) not in self.done),
                      key=checkpoint_step)

    def finished(self):
        trained = RunState.load(self.model_dir).trained_step
        return trained is not None and trained in self.done

    def run(self, timeout):
        """Watches until the run is finished and evaluated, or `timeout` seconds pass without
        a new checkpoint; returns how many checkpoints it evaluated."""
        evaluated, last_news = 0, time.monotonic()
        while True:
            pending = self.pending()
            if pending:
                evaluated += self.evaluate(pending[0])
                last_news = time.monotonic()
            elif self.finished():
                self.log(f"the run is finished and its last step is evaluated; {evaluated} "
                         f"checkpoint(s) evaluated, results in {self.results_path}")
                return evaluated
            elif time.monotonic() - last_news > timeout:
                self.log(f"no new checkpoint for {timeout:g} s: stopping ({evaluated} evaluated, "
                         f"results in {self.results_path})")
                return evaluated
            else:
                time.sleep(self.poll_seconds)

    def evaluate(self, path):
        """Evaluates checkpoint `path`; 1, or 0 when it vanished before or while it was read."""
        step = checkpoint_step(path)
        self.done.add(step)
        try:
            self.trainer.restore_path(path)
        except TrainerError as error:
            self.log(f"skipped step {step}: {error} (rotated away before it was read)")
            return 0
        results = self.trainer.evaluate(self.dataset)
        values = {k: results[k] for k in ("top1", "top5", "cross_entropy")}
        self.summaries.evaluation(progress.WATCH, values, step)
        self.results.append({"step": step, "checkpoint": os.path.basename(path),
                             "examples": results["examples"],
                             "weights": self.trainer.weights_name, **values})
        atomic.write_text(self.results_path, json.dumps(self.results, indent=2) + "\n")
        self.log(f"step {step}: top-1 {values['top1']:.4f}  top-5 {values['top5']:.4f}  "
                 f"cross-entropy {values['cross_entropy']:.4f}  on {results['examples']} images")
        return 1
