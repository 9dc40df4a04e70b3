"""The paper's recipe (Szegedy et al. 2015, section 8) on GPUs.

    python -m trainers.imagenet --config paper --data_dir /data/imagenet-tfrecords

RMSprop (decay 0.9, momentum 0.9, epsilon 1.0), learning rate 0.045 decayed x0.94 every two epochs,
gradients clipped to global norm 2.0, label smoothing 0.1, auxiliary loss x0.4, batch 32 per
replica, 100 epochs, evaluation with an exponential moving average of the weights (decay 0.9999).
The paper trained on 50 replicas; on 8 V100/A100 GPUs expect roughly 4-7 days.
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="paper",
        dataset="imagenet_tfrecord",
        image_size=299,
        color_distortion=True,
        per_replica_batch_size=32,  # global batch = 32 x replicas
        global_batch_size=0,
        optimizer="rmsprop",
        base_learning_rate=0.045,  # not scaled with the batch (lr_reference_batch_size=0)
        rmsprop_rho=0.9,  # Keras' default is 0.9 as well, set anyway
        momentum=0.9,  # Keras' default is 0.0
        epsilon=1.0,  # Keras' default is 1e-7
        global_clipnorm=2.0,
        decay_rate=0.94,
        decay_epochs=2.0,
        staircase=True,
        label_smoothing=0.1,
        aux_loss_weight=0.4,
        ema_momentum=0.9999,
        strategy="mirrored",
        precision="auto",
        epochs=100,
        checkpoint_every_steps=5000,
        log_every_steps=100,
    )
