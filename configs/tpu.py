"""The Cloud TPU reference recipe (tensorflow/tpu models/experimental/inception/inception_v3.py
and its inception_preprocessing.py), on a TPU v2-8/v3-8.

    python -m trainers.imagenet --config tpu --tpu local --data_dir gs://BUCKET/imagenet-tfrecords \
        --model_dir gs://BUCKET/runs/inception_v3

As the reference, step for step: global batch 1024; TF-1 RMSprop (decay 0.9, momentum 0.9,
epsilon 1.0, mean square starting at 1); learning rate 0.165 x batch / 256 (0.66 at 1024),
x0.94 every int(3 x 1281167 / batch) steps counted from step 0, never below 1e-4 x the initial
rate, no warm-up; no gradient clipping; weight decay 4e-5 on conv and dense kernels (TF-slim's
l2: wd * sum(w^2) / 2); label smoothing 0.1 and aux weight 0.4; dropout 0.2; batch-norm momentum
0.996; EMA 0.995 warmed up as TF's ExponentialMovingAverage(num_updates=step); fast colour
distortion (brightness and Cb/Cr shifts), 100 crop tries; about 170 epochs (the reference's
213k steps). On a v3-8 expect about a day. What differs, and why:

- Warm-up: off, as the reference's default (use_learning_rate_warmup=False). Its optional shape
  (2 cold epochs at 0.1x, then a per-epoch ramp): --set warmup=tpu_reference warmup_epochs=7
  cold_epochs=2.
- Precision "auto" = mixed bfloat16 on TPU (float32 weights), the TPU's native matmul type; the
  reference's default is float32 (--precision float32 to match).
- 1000 classes, not the reference's 1001 (no background class): the labels of the standard
  TFRecords shifted by one, as Keras' published weights.
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="tpu",
        dataset="imagenet_tfrecord",
        image_size=299,
        color_distortion="tpu_fast",
        dropout_rate=0.2,
        batch_norm_momentum=0.996,
        global_batch_size=1024,
        per_replica_batch_size=0,  # unused: the global batch is set
        optimizer="rmsprop",
        base_learning_rate=0.165,
        lr_reference_batch_size=256,  # lr = 0.165 x global_batch / 256
        rmsprop_rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        rmsprop_initial_mean_square=1.0,  # TF-1
        global_clipnorm=None,  # the reference does not clip
        weight_decay=4e-5,
        decay_rate=0.94,
        decay_epochs=3.0,
        staircase=True,
        lr_floor_fraction=1e-4,
        warmup="none",
        warmup_epochs=0.0,
        cold_epochs=0.0,
        label_smoothing=0.1,
        aux_loss_weight=0.4,
        ema_momentum=0.995,
        strategy="tpu",
        precision="auto",  # bfloat16 on TPU
        steps_per_execution=100,
        epochs=170,
        eval_every_epochs=5,
        checkpoint_every_steps=2000,
        log_every_steps=100,
        on_nonfinite="recover",  # TF Model Garden's recovery: restore the last good checkpoint
    )
