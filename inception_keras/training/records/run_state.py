"""What a run has finished, so that the same command run again does only what is missing.

`<model_dir>/run_state.json`, written atomically by the chief after each milestone:

    {"trained_step": 372,                      # training reached its last step at 372
     "validated_step": 279,                    # the newest epoch end whose validation finished
     "evaluated": {"step": 372, "eval_crops": 1,            # the final evaluation, and its
                   "path": "/abs/runs/smoke/eval.json"},   # record (--eval_only's are elsewhere);
                                                # "eval_exclude": its file, when one was used
     "exported": {"step": 372, "path": "/abs/saved_models/inception_v3/1"},
     "best": {"step": 279, "val_top1": 0.93, "path": ".../checkpoints/best/best-279"},
     "last_validation": {"step": 372, "val_top1": 0.92},       # with keep_best=val_top1
     "recoveries": [{"failed_steps": [151, 160], "restored_step": 150,   # on_nonfinite=recover
                     "checkpoint": ".../checkpoints/ckpt-150"}]}

A rerun of a finished run trains no step, evaluates only if `evaluated` lacks that step,
eval_crops and eval_exclude (the record it names is what the rerun relies on: `--eval_only` writes its own records
under evaluations/ and never changes `evaluated`), and exports only if that step's weights were
never exported. A run given more epochs continues training (then `trained_step` moves on). A SIGTERM during a validation leaves
`validated_step` behind the epoch's checkpoint, so the resumed run validates that epoch first.
The continuous evaluator reads `trained_step` to know when the run is over. `recoveries` lists
each recovery from a non-finite loss; `max_recoveries` bounds its length over all the restarts of
the run, so a restarted run does not get a fresh budget silently.
"""

import dataclasses
import json
import os
from typing import Optional

import tensorflow as tf

from inception_keras import atomic

RUN_STATE_FILE = "run_state.json"


@dataclasses.dataclass
class RunState:
    trained_step: Optional[int] = None
    validated_step: int = 0
    evaluated: Optional[dict] = None
    exported: Optional[dict] = None
    best: Optional[dict] = None  # keep_best: {"step", "val_top1", "path"} of the best validation
    last_validation: Optional[dict] = None  # {"step", "val_top1"}
    recoveries: list = dataclasses.field(default_factory=list)  # on_nonfinite=recover

    @classmethod
    def load(cls, model_dir):
        """The run's state, or a fresh one when it has none yet."""
        path = os.path.join(model_dir, RUN_STATE_FILE)
        if not tf.io.gfile.exists(path):
            return cls()
        with tf.io.gfile.GFile(path) as file:
            values = json.loads(file.read())
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def save(self, model_dir):
        atomic.write_text(os.path.join(model_dir, RUN_STATE_FILE),
                          json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    def finished_training(self, step):
        return self.trained_step is not None and self.trained_step == step

    def evaluated_at(self, step, eval_crops, eval_exclude=None):
        """Whether the final evaluation of `step` with `eval_crops` and `eval_exclude` is done
        (records from before "path" and "eval_exclude" were kept match too: no exclusion)."""
        done = self.evaluated or {}
        return (done.get("step") == step and done.get("eval_crops") == eval_crops
                and done.get("eval_exclude") == eval_exclude)

    def evaluation_path(self, model_dir):
        """The record of the final evaluation where it is now: the file named by the path kept
        (written where the run was then), in `model_dir` (where the run is now: a run moved
        elsewhere keeps its records)."""
        kept = (self.evaluated or {}).get("path") or "eval.json"
        return os.path.join(model_dir, os.path.basename(kept))

    def exported_at(self, step):
        return bool(self.exported) and self.exported.get("step") == step


class RunRecord:
    """The run's `RunState`, read once; `update` changes and saves it (on the chief only: the
    other workers of a multi-worker run keep their copy in memory)."""

    def __init__(self, model_dir, is_chief=True):
        self.model_dir, self.is_chief = model_dir, is_chief
        self.state = RunState.load(model_dir)

    def update(self, **changes):
        self.state = dataclasses.replace(self.state, **changes)
        if self.is_chief:
            self.state.save(self.model_dir)
