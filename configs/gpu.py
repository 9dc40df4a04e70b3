"""Single-host multi-GPU recipe (MirroredStrategy, mixed_float16 with loss scaling).

    python -m trainers.imagenet --config gpu --data_dir /data/imagenet-tfrecords

Global batch 256 (e.g. 8 GPUs x 32), TF-1 RMSprop (0.9, 0.9, 1.0, mean square from 1), learning
rate 0.165 x batch / 256 with a 2-epoch linear warm-up, x0.94 every 2 epochs from step 0, clip
2.0, weight decay 4e-5 on kernels, label smoothing 0.1, aux x0.4, EMA 0.9999, 100 epochs. On 8
A100s expect about 2-3 days. It has no single reference; each choice in one line:

- Learning rate 0.165 x batch / 256: the Cloud TPU reference's rule, the one published tuning of
  this model's RMSprop for synchronous batches (the paper's 0.045 was for batch-32 updates).
- Linear warm-up over 2 epochs (the rate times min(1, (step + 1) / warm-up steps)), decay counted
  from step 0: float16 loss scaling is still settling in the first steps (Goyal et al. 2017).
- The paper's schedule length and shape (x0.94 every 2 epochs, 100 epochs) and its clipping at
  2.0, applied to the global-batch gradient after the all-reduce; no floor (0.94^50 ~ 0.05).
- Augmentation "slim_fast" (TF-slim's), batch-norm momentum 0.9997 and dropout 0.2 (TF-slim's,
  tuned for 32 images per replica), weight decay 4e-5 (TF-slim and the TPU reference).
- EMA 0.9999 warmed up as TF's ExponentialMovingAverage(num_updates=step).
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="gpu",
        dataset="imagenet_tfrecord",
        image_size=299,
        color_distortion="slim_fast",
        dropout_rate=0.2,
        batch_norm_momentum=0.9997,
        global_batch_size=256,
        per_replica_batch_size=0,  # unused: the global batch is set
        optimizer="rmsprop",
        base_learning_rate=0.165,
        lr_reference_batch_size=256,  # lr = 0.165 x global_batch / 256
        rmsprop_rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        rmsprop_initial_mean_square=1.0,  # TF-1
        global_clipnorm=2.0,
        weight_decay=4e-5,
        decay_rate=0.94,
        decay_epochs=2.0,
        staircase=True,
        lr_floor_fraction=0.0,
        warmup="linear",
        warmup_epochs=2.0,
        cold_epochs=0.0,
        label_smoothing=0.1,
        aux_loss_weight=0.4,
        ema_momentum=0.9999,
        strategy="mirrored",
        precision="auto",  # mixed_float16 on GPUs
        epochs=100,
        checkpoint_every_steps=5000,
        log_every_steps=100,
        on_nonfinite="recover",  # TF Model Garden's recovery: restore the last good checkpoint
    )
