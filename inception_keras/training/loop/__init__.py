"""The training loop and its policies (Orbit's Controller and actions, in our words).

train_loop (`TrainLoop`: steps in time-bounded calls, actions at boundaries), actions
(checkpoint, validate, keep the best, log), observe (profiler, histograms), progress (log lines
and TensorBoard), preemption (SIGTERM, the size of the next call), checkpoints (atomic
save/resume, the saved config).
"""
