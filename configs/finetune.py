"""Fine-tune Keras' ImageNet Inception-v3 on your own images (a few hundred to a few thousand
per class), from an image folder or a TFDS dataset, to a SavedModel with your class names.

    python -m trainers.imagenet --config finetune --dataset folder:/path/to/photos
    python -m trainers.imagenet --config finetune --dataset tfds:tf_flowers

The folder is `photos/<class_name>/*.jpg` (every 10th image held out for validation) or
`photos/train/<class_name>/...` with `photos/validation/<class_name>/...`. The recipe's own
dataset is a placeholder path: without `--dataset` the run stops at once with "image folder
'/path/to/photos' does not exist". The export goes to `saved_models/inception_v3_finetuned/<N>`,
its class names are the folder's (or the TFDS dataset's) label names.

Two phases, 10 epochs in all: 2 epochs training only the new classifier on the frozen ImageNet
network, then 8 epochs training the two top 8x8 blocks (mixed9, mixed10) with it. On one GPU
expect a few minutes per 10,000 training images (10 epochs); on a CPU, hours. It follows no single
reference: the transfer-learning practice of TF Hub's `make_image_classifier` (SGD momentum 0.9
at ~0.005, batch 32, dropout 0.2, label smoothing 0.1, a few epochs) and of the keras.io
transfer-learning guide and the `keras.applications` InceptionV3 fine-tuning example (train the
new head on the frozen network first, then unfreeze the top two Inception blocks at a low rate,
frozen batch norm in inference mode). One line per choice:

- init_weights "imagenet" (Keras' published file, ~92 MB, downloaded once into ~/.keras/models):
  the whole point; its 1000-class classifier is replaced by a fresh one of your classes.
- image_size 299, canonical variant, depth_multiplier 1.0: the only shape the published weights
  load into (and the resolution their features were learned at).
- include_aux False: Keras' weights have no auxiliary head (it would start random), and its
  regularising effect matters for long from-scratch training, not for a 10-epoch fine-tune; the
  export has the main head only anyway. aux_loss_weight 0 accordingly.
- head_epochs 2: a random classifier's first gradients are large and would scramble the
  pretrained blocks; 2 epochs on the frozen network give it sensible weights first.
- trainable_from "mixed8" (train mixed9, mixed10 and the classifier, 11M of 22M weights): a
  few hundred to a few thousand images per class fit the top of the network without
  overfitting it; earlier layers are generic edges and textures. `--set trainable_from=head` for
  a few dozen images per class, `all` (with a lower rate) for tens of thousands.
- SGD momentum 0.9 at 0.01 x batch / 32, x0.8 every epoch (0.0064 when the blocks unfreeze,
  0.0013 in the last epoch): TF Hub's rate for fine-tuning, decayed so the last epochs settle.
  Rate and batch scale linearly (`--batch_size 64` doubles the rate).
- 32 images per replica, one_device strategy (the first GPU, else the CPU): a few thousand
  images need no more than one GPU, and 32 images keep batch statistics of the unfrozen
  blocks' BatchNormalization meaningful. `--strategy mirrored` for all local GPUs.
- batch_norm_momentum 0.99 (Keras' own): the unfrozen blocks' moving statistics must follow
  their changing weights within a short run; 0.9997 would still remember ImageNet's after 10
  epochs. Frozen blocks' BatchNormalization runs in inference mode (ImageNet statistics).
- dropout 0.2, label smoothing 0.1, weight decay 4e-5 on kernels (what the weights were trained
  with), clipping at global norm 2.0 against a rare huge step from mislabelled images.
- Augmentation: Inception's random crop (5-100% of the area) and flip, no colour distortion:
  colour is often what tells your classes apart.
- No EMA: the run is short and starts from good weights; there is nothing to average over.
- eval_crops 1: the final score is what the served model (one central crop) does;
  `--set eval_crops=10` for a multi-crop estimate.
- precision auto (mixed float16 on GPUs), evaluation after every epoch, checkpoints at each
  epoch end (an interrupted run resumes; the ImageNet weights are not loaded again).
"""

from configs.base import TrainConfig


def get_config():
    return TrainConfig(
        name="finetune",
        dataset="folder:/path/to/photos",  # placeholder: pass --dataset folder:PATH or tfds:NAME
        data_dir=None,  # TFDS data dir for tfds:NAME (None: TFDS's default)
        image_size=299,
        color_distortion="none",
        variant="canonical",
        depth_multiplier=1.0,
        min_depth=16,
        dropout_rate=0.2,
        include_aux=False,  # Keras' ImageNet weights have no auxiliary head
        batch_norm_momentum=0.99,
        init_weights="imagenet",
        trainable_from="mixed8",  # mixed9, mixed10 and the classifier train
        head_epochs=2,  # then the blocks after mixed8 unfreeze
        per_replica_batch_size=32,  # global batch = 32 x replicas
        global_batch_size=0,
        optimizer="sgd",
        momentum=0.9,
        base_learning_rate=0.01,
        lr_reference_batch_size=32,  # lr = 0.01 x global_batch / 32
        epsilon=1e-7,  # unused by SGD
        global_clipnorm=2.0,
        weight_decay=4e-5,
        decay_rate=0.8,
        decay_epochs=1.0,
        staircase=True,
        lr_floor_fraction=0.0,
        warmup="none",  # head_epochs is the warm-up
        warmup_epochs=0.0,
        cold_epochs=0.0,
        label_smoothing=0.1,
        aux_loss_weight=0.0,  # no auxiliary head
        ema_momentum=None,
        strategy="one_device",
        precision="auto",
        steps_per_execution=1,
        epochs=10,
        steps_per_epoch=0,  # one pass over the training images
        eval_steps=0,  # every validation image
        eval_every_epochs=1,
        eval_crops=1,
        model_name="inception_v3_finetuned",  # not a new version of the ImageNet model's
        checkpoint_every_steps=0,
        keep_checkpoints=3,
        log_every_steps=50,
        image_summaries=True,
    )
