"""Training pieces for the ImageNet trainer, one job per module.

losses (label-smoothed CE on both heads, top-1/top-5), regularization (kernel weight decay),
schedules (warm-up + staircase exponential decay), optimizers (paper RMSprop, EMA, loss
scaling), ema (swapping averaged weights in and out), checkpoints (atomic save/resume, saved
config, conflict check, NaN guard), callbacks (progress lines, TensorBoard), fused_batch_norm
(one-kernel BN for speed), keras_compat (Keras 3 multi-worker fit workarounds).
"""
