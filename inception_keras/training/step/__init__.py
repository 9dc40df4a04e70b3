"""The step's maths: what one training step computes on every replica.

steps (the distributed train/eval step: logits, loss over the global batch, ONE all-reduce,
clip, update, EMA; exact masked evaluation reduced once per pass), updates (the optimizer's maths
applied per replica, decoupled decay, parameter groups), replica_statistics (batch-norm
statistics averaged over replicas before they are read), optimizers, schedules, ema, loss_scale,
regularization, fused_batch_norm.
"""
