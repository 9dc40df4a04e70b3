"""The newcomer's recipe: the bundled smoke dataset on this machine's CPU, in a few minutes.

    python -m trainers.imagenet            # same as: --config smoke

A narrow Inception-v3 (depth_multiplier 0.25) at 96x96 on the 10-class bundled dataset, Adam,
one CPU device, 4 epochs of 93 steps; prints progress, final top-1/top-5 and where the SavedModel
was exported. About 3 minutes on 2 CPU cores; validation top-1 ~0.9 (chance 0.1), and ~0.65
already after 40 steps (`--epochs 1 --steps_per_epoch 40`, the CI test).
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="smoke",
        dataset="smoke",
        image_size=96,
        depth_multiplier=0.25,
        dropout_rate=0.2,
        batch_norm_momentum=0.9,  # short runs: moving statistics settle within ~30 steps
        global_batch_size=32,
        optimizer="adam",
        base_learning_rate=2e-3,
        epsilon=1e-7,  # Adam's usual epsilon (the field defaults to the paper's RMSprop 1.0)
        global_clipnorm=2.0,
        warmup_epochs=0.0,
        decay_rate=0.7,
        decay_epochs=1.0,
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
