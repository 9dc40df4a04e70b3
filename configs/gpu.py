"""Single-host multi-GPU recipe (MirroredStrategy, mixed_float16 with loss scaling).

    python -m trainers.imagenet --config gpu --data_dir /data/imagenet-tfrecords

Global batch 256 (e.g. 8 GPUs x 32), RMSprop (0.9, 0.9, 1.0), learning rate 0.045 x batch/256 with a
2-epoch warm-up, x0.94 every 2 epochs, clip 2.0, weight decay 4e-5 on kernels, label smoothing 0.1,
aux x0.4, EMA 0.9999, 100 epochs. On 8 A100s expect about 2-3 days.
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="gpu",
        dataset="imagenet_tfrecord",
        image_size=299,
        color_distortion=True,
        global_batch_size=256,
        optimizer="rmsprop",
        base_learning_rate=0.045,
        lr_reference_batch_size=256,  # lr = 0.045 * global_batch / 256
        rmsprop_rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        global_clipnorm=2.0,
        weight_decay=4e-5,
        warmup_epochs=2.0,
        decay_rate=0.94,
        decay_epochs=2.0,
        label_smoothing=0.1,
        aux_loss_weight=0.4,
        ema_momentum=0.9999,
        strategy="mirrored",
        precision="auto",  # mixed_float16 on GPUs
        epochs=100,
        checkpoint_every_steps=5000,
        log_every_steps=100,
    )
