"""Training pieces for the ImageNet trainer, one job per module.

distribute (the tf.distribute strategy and the precision policy of a run),
steps (the distributed train/eval step functions the trainer owns: loss over the global batch,
all-reduce, clip, optimizer apply, EMA; exact masked evaluation), losses (label smoothing, aux
weight, top-k), regularization (kernel weight decay), schedules (learning rate per step),
optimizers (RMSprop with TF-1's mean-square start, Adam, SGD), ema (moving average with TF's
warm-up, swapped in for evaluation and export), loss_scale (dynamic float16 loss scaling),
checkpoints (atomic save/resume, saved config, conflict check), preemption (SIGTERM -> save ->
exit), progress (log lines and TensorBoard), fused_batch_norm (one-kernel BN for speed).
"""
