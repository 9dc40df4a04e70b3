"""The paper's recipe (Szegedy et al. 2015, "Rethinking the Inception Architecture", sections 7-8),
trained synchronously on GPUs.

    python -m trainers.imagenet --config paper --data_dir /data/imagenet-tfrecords

Table 3's last row, "+ BN-auxiliary" (Inception-v3): 21.2% / 5.6% top-1/top-5 error, single
crop, 4.8 billion operations; Table 2's 299x299 network, 76.6% top-1 accuracy. The rows above it
are configs/paper_v2*.py, each one change from the next (`python -m inception_keras.paper`).

From the paper: RMSprop with decay 0.9 and epsilon 1.0, learning rate 0.045 decayed x0.94 every
two epochs, gradient clipping at 2.0, label smoothing 0.1, batch 32 per replica, 100 epochs,
evaluation with a running average of the weights, BN-auxiliary head. On 8 V100/A100 GPUs expect
roughly 4-7 days. Where the paper is silent or cannot be followed, one line per choice:

- Learning rate 0.045 x global_batch / 32: each update of the paper's 50 replicas applied one
  batch-32 gradient at 0.045; synchronous replicas average R such gradients per step, and R
  steps of 0.045 x g are to first order one step of R x 0.045 x mean(g) (the linear scaling rule,
  reference batch 32). One replica takes exactly the paper's step. No warm-up, as in the paper.
- Clipping at global norm 2.0 applies once per step, after the cross-replica all-reduce, to the
  global-batch gradient (the paper clipped each replica's own batch-32 gradient).
- RMSprop momentum 0.9 and a mean square starting at 1: TensorFlow's RMSPropOptimizer as the
  authors ran it (TF-slim's defaults); the paper gives no momentum.
- Weight decay 4e-5 on conv and dense kernels (no BN parameters, no biases): the paper is silent;
  the authors' TF-slim code (inception_v3_arg_scope) and the Cloud TPU reference both use it.
- Augmentation "slim_fast" (random crop of 5-100% area, 100 tries, flip, brightness and
  saturation in random order): the paper describes none; this is TF-slim's Inception default.
- Aux loss weight 0.4, dropout 0.2, batch norm momentum 0.9997 (epsilon 1e-3 is the model's):
  TF-slim's values; the paper gives none.
- EMA decay 0.9999 (the paper gives no decay), warmed up as TF's
  ExponentialMovingAverage(num_updates=step): min(0.9999, (1 + t) / (10 + t)).
- Precision "auto" (mixed float16 on GPUs, float32 weights and loss scaling): the maths of the
  recipe in a third of the time; --precision float32 for the paper's arithmetic.
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="paper",
        dataset="imagenet_tfrecord",
        image_size=299,
        color_distortion="slim_fast",
        dropout_rate=0.2,
        batch_norm_momentum=0.9997,
        per_replica_batch_size=32,  # global batch = 32 x replicas
        global_batch_size=0,
        optimizer="rmsprop",
        base_learning_rate=0.045,
        lr_reference_batch_size=32,  # lr = 0.045 x global_batch / 32 (see the docstring)
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
        warmup="none",
        warmup_epochs=0.0,
        cold_epochs=0.0,
        label_smoothing=0.1,
        aux_loss_weight=0.4,
        ema_momentum=0.9999,
        strategy="mirrored",
        precision="auto",
        epochs=100,
        checkpoint_every_steps=5000,
        log_every_steps=100,
        on_nonfinite="recover",  # TF Model Garden's recovery: restore the last good checkpoint
    )
