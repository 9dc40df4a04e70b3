"""The newcomer's recipe: the bundled smoke dataset on this machine's CPU, in a few minutes.

    python -m trainers.imagenet            # same as: --config smoke

A narrow Inception-v3 (depth_multiplier 0.25) at 96x96 on the 10-class bundled dataset, Adam,
one CPU device, 4 epochs of 93 steps; prints progress, final top-1/top-5 and where the SavedModel
was exported. 3 min 15 s and 4 min 27 s in two runs from a fresh clone, smoke-set generation and
export included (measured on a shared 2-core x86 CPU without AVX512_BF16, so float32, with TF
2.21 and Keras 3.15); validation top-1 0.87-0.95 after the first epoch and 1.00 after the fourth
(chance 0.1). CI runs exactly this
(tests/test_trainer_main_job.py). It follows no reference: Adam at 2e-3 (x0.7 each epoch)
learns in a few hundred steps where RMSprop at the paper's rate needs epochs; no colour
distortion, weight decay or EMA, which only pay off in long runs; batch-norm momentum 0.9 so the
moving statistics settle within ~30 steps.
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="smoke",
        dataset="smoke",
        image_size=96,
        color_distortion="none",
        depth_multiplier=0.25,
        dropout_rate=0.2,
        batch_norm_momentum=0.9,  # short runs: moving statistics settle within ~30 steps
        global_batch_size=32,
        per_replica_batch_size=0,  # unused: the global batch is set
        optimizer="adam",
        base_learning_rate=2e-3,
        lr_reference_batch_size=0,  # not scaled with the batch
        epsilon=1e-7,
        global_clipnorm=2.0,
        weight_decay=0.0,
        decay_rate=0.7,
        decay_epochs=1.0,
        staircase=True,
        lr_floor_fraction=0.0,
        warmup="none",
        warmup_epochs=0.0,
        cold_epochs=0.0,
        label_smoothing=0.1,
        aux_loss_weight=0.4,
        ema_momentum=None,
        strategy="cpu",
        precision="auto",
        epochs=4,
        steps_per_epoch=0,  # one pass over the bundled training split
        eval_every_epochs=1,
        log_every_steps=10,
        checkpoint_every_steps=0,
        image_summaries=True,
    )
