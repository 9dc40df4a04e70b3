"""The Cloud TPU reference recipe (tensorflow/tpu `inception_v3` model), on a TPU v2-8/v3-8.

    python -m trainers.imagenet --config tpu --tpu local --data_dir gs://BUCKET/imagenet-tfrecords \
        --model_dir gs://BUCKET/runs/inception_v3

Global batch 1024, RMSprop (0.9, 0.9, 1.0), learning rate 0.165 x batch/256 (0.66 at 1024) with a
linear warm-up over 7 epochs, then x0.94 every 3 epochs; weight decay 4e-5 on conv/dense kernels
only (TF-slim's l2: wd * sum(w^2) / 2); EMA of the weights 0.995; batch-norm momentum 0.996;
bfloat16; ~170 epochs (about 213k steps). On a v3-8 expect about a day.
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="tpu",
        dataset="imagenet_tfrecord",
        image_size=299,
        color_distortion=False,
        global_batch_size=1024,
        optimizer="rmsprop",
        base_learning_rate=0.165,
        lr_reference_batch_size=256,  # lr = 0.165 * global_batch / 256
        rmsprop_rho=0.9,
        momentum=0.9,
        epsilon=1.0,
        global_clipnorm=None,  # the TPU reference does not clip
        weight_decay=4e-5,
        warmup_epochs=7.0,
        decay_rate=0.94,
        decay_epochs=3.0,
        staircase=True,
        label_smoothing=0.1,
        aux_loss_weight=0.4,
        ema_momentum=0.995,
        batch_norm_momentum=0.996,
        strategy="tpu",
        precision="auto",  # bfloat16 on TPU
        steps_per_execution=100,
        epochs=170,
        eval_every_epochs=5,
        checkpoint_every_steps=2000,
        log_every_steps=100,
    )
