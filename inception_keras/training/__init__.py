"""Training pieces for the ImageNet trainer, one job per module.

The run, top to bottom: entries (train / evaluate / watch / export, each a readable story),
setup (strategy, precision, dataset sizes, the resolved config), trainer (the `Trainer`: model,
optimizer(s), EMA, loss scale, counters and the compiled step functions, rebuilt in one place;
restore, evaluate, export), loop (the training loop in time-bounded calls), actions (its
policies: checkpoint, validate, keep the best, log), observe (profiler, histograms), watcher
(the continuous evaluator), reports (the summary and the final evaluation's files),
run_state (what a run has finished), inputs (the run's datasets).

The step and its parts: steps (the distributed train/eval step: logits, loss over the global
batch, ONE all-reduce, clip, update, EMA; exact masked evaluation reduced once per pass),
updates (the optimizer's math applied per replica, decoupled decay, parameter groups),
replica_statistics (batch-norm statistics averaged over replicas before they are read),
optimizers (RMSprop with TF-1's mean-square start, Adam(W), SGD), schedules (learning rate per
step: exponential with warm-ups, cosine), ema (moving average with TF's warm-up), loss_scale
(dynamic float16 loss scaling), regularization (kernel weight decay), fused_batch_norm (one-kernel
or synchronized BN), transfer (init weights, trainable layers).

Around it: distribute (strategies and precision), workers (multi-worker scratch folders, restored
step agreement, lost peers), preemption (SIGTERM, time-bounded calls), checkpoints (atomic
save/resume, saved config, conflict check), progress (log lines and TensorBoard), confusion
(per-class results), errors (how a run ends and its exit status).
"""
