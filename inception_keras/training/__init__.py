"""Training pieces for the ImageNet trainer, grouped by what they are part of.

The run, top to bottom (this folder): entries (train / evaluate / watch / export, each a
readable story), setup (strategy, precision, dataset sizes, the resolved config), trainer (the
`Trainer`: model, optimizer(s), EMA, loss scale, counters and the compiled step functions,
rebuilt in one place; restore, evaluate, export), watcher (the continuous evaluator), inputs (the
run's datasets), transfer (init weights, trainable layers), errors (how a run ends and its exit
status).

Subpackages:
- step/: the step's maths (loss, one all-reduce, update, EMA, BN statistics, schedules).
- loop/: the training loop in time-bounded calls and its actions (checkpoint, validate, keep the
  best, log, profile), preemption and TensorBoard/log output.
- cluster/: strategies and precision, multi-worker agreement.
- records/: the files a run writes for people (summary, evaluation, run state, confusion).
"""
