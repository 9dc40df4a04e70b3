"""MixUp and CutMix of training batches, and their soft targets (with label smoothing, once).

`mix_batches(batches, mixing, num_classes, seed, deterministic=...)` maps batched (images,
class ids) to (mixed images, float32 [B, num_classes] soft targets), each batch with its own
stateless seed (`seeds.py`). As timm's `Mixup` in its default "batch" mode:
- With probability `mix_prob` a batch is mixed (else its targets are the smoothed one-hots);
  with both alphas on, it uses CutMix with probability `switch_prob`, else MixUp; with one on,
  that one.
- lambda ~ Beta(alpha, alpha), one per batch; image i is mixed with image B-1-i (the batch
  reversed). MixUp: lambda x_i + (1 - lambda) x_j. CutMix: a box of sqrt(1 - lambda) of each
  side, centred uniformly and clipped to the image, pasted from x_j; lambda is then corrected to
  1 - the box's real share of the image (timm's `correct_lam`).
- Targets: each id's one-hot smoothed first, (1 - eps) + eps / C on its class and eps / C
  elsewhere, then mixed with the same lambda (timm's `mixup_target`), so the loss must apply no
  further smoothing to them; they sum to 1.
Each input pipeline mixes within its own per-replica batches.

Why not `keras.layers.MixUp` / `CutMix`: they draw from a stateful SeedGenerator and take no
seed tensor (see `augment.py`), and know nothing of label smoothing.
"""

import dataclasses

import tensorflow as tf

from inception_keras.data.errors import check_number
from inception_keras.data.image_ops import paste_patch
from inception_keras.data.seeds import MIX_STREAM, map_with_seeds


@dataclasses.dataclass(frozen=True)
class Mixing:
    """How training batches are mixed; checked on creation (DataError). Alphas of 0 are off."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    switch_prob: float = 0.5
    mix_prob: float = 1.0
    label_smoothing: float = 0.0

    def __post_init__(self):
        check_number("mixup_alpha", self.mixup_alpha, 0.0, None)
        check_number("cutmix_alpha", self.cutmix_alpha, 0.0, None)
        check_number("mix_switch_prob", self.switch_prob, 0.0, 1.0)
        check_number("mix_prob", self.mix_prob, 0.0, 1.0)
        check_number("label_smoothing", self.label_smoothing, 0.0, 1.0)

    @property
    def enabled(self):
        """Either alpha on: the labels are then soft targets (also of batches left unmixed)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0


def smoothed_one_hot(class_ids, num_classes, label_smoothing):
    """int [B] -> float32 [B, C]: (1 - eps) + eps / C on each class, eps / C elsewhere."""
    one_hot = tf.one_hot(class_ids, num_classes, dtype=tf.float32)
    return one_hot * (1.0 - label_smoothing) + label_smoothing / num_classes


def stateless_beta(seed, alpha):
    """A float32 sample of Beta(alpha, alpha) for any alpha > 0.

    Gamma(alpha) = Gamma(alpha + 1) U^(1 / alpha), taken in logs: small alphas would underflow
    both gammas of the plain ratio to 0 (or to the same tiny value, giving 0.5).
    """
    gamma_seed, boost_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    alpha = tf.cast(alpha, tf.float64)
    gammas = tf.random.stateless_gamma([2], gamma_seed, alpha=alpha + 1.0, dtype=tf.float64)
    uniforms = 1.0 - tf.random.stateless_uniform([2], boost_seed, dtype=tf.float64)  # (0, 1]
    log_gammas = tf.math.log(gammas) + tf.math.log(uniforms) / alpha
    return tf.cast(tf.sigmoid(log_gammas[0] - log_gammas[1]), tf.float32)


def cutmix_box(seed, height, width, lam):
    """(top, bottom, left, right) of timm's `rand_bbox` for a cut of sqrt(1 - lam) per side."""
    ratio = tf.sqrt(1.0 - lam)
    cut_height = tf.cast(tf.cast(height, tf.float32) * ratio, tf.int32)
    cut_width = tf.cast(tf.cast(width, tf.float32) * ratio, tf.int32)
    centre = tf.random.stateless_uniform([2], seed)
    centre_y = tf.cast(centre[0] * tf.cast(height, tf.float32), tf.int32)
    centre_x = tf.cast(centre[1] * tf.cast(width, tf.float32), tf.int32)
    top = tf.clip_by_value(centre_y - cut_height // 2, 0, height)
    bottom = tf.clip_by_value(centre_y + cut_height // 2, 0, height)
    left = tf.clip_by_value(centre_x - cut_width // 2, 0, width)
    right = tf.clip_by_value(centre_x + cut_width // 2, 0, width)
    return top, bottom, left, right


def _cutmix(images, partners, seed, lam):
    """(images with the box from partners, the box-corrected lambda)."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    top, bottom, left, right = cutmix_box(seed, height, width, lam)
    box_area = tf.cast((bottom - top) * (right - left), tf.float32)
    pasted = paste_patch(images, partners[:, top:bottom, left:right], top, left)
    return pasted, 1.0 - box_area / tf.cast(height * width, tf.float32)


def _uses_cutmix(mixing, seed):
    if mixing.mixup_alpha > 0 and mixing.cutmix_alpha > 0:
        return tf.random.stateless_uniform([], seed) < mixing.switch_prob
    return tf.constant(mixing.cutmix_alpha > 0)


def mix_batch(images, class_ids, seed, mixing, num_classes):
    """One batch: float32 images [B, H, W, C] and int ids [B] -> (mixed images, soft targets)."""
    apply_seed, switch_seed, lam_seed, box_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    cutmix = _uses_cutmix(mixing, switch_seed)
    alpha = tf.where(cutmix, float(mixing.cutmix_alpha), float(mixing.mixup_alpha))
    mixed = tf.random.stateless_uniform([], apply_seed) < mixing.mix_prob
    lam = tf.where(mixed, stateless_beta(lam_seed, alpha), 1.0)
    partners = tf.reverse(images, axis=[0])
    images, lam = tf.cond(
        cutmix,
        lambda: _cutmix(images, partners, box_seed, lam),
        lambda: (lam * images + (1.0 - lam) * partners, lam),
    )
    targets = smoothed_one_hot(class_ids, num_classes, mixing.label_smoothing)
    return images, lam * targets + (1.0 - lam) * tf.reverse(targets, axis=[0])


def mix_batches(batches, mixing, num_classes, seed, *, deterministic):
    """(images, ids) batches -> (mixed images, soft targets); unchanged if mixing is off.

    `seed` is this input pipeline's (None: random); the output order is the input order when
    `deterministic`.
    """
    if not mixing.enabled:
        return batches

    def mix(batch, batch_seed):
        images, class_ids = batch
        return mix_batch(images, class_ids, batch_seed, mixing, num_classes)

    return map_with_seeds(batches, mix, seed, MIX_STREAM, deterministic=deterministic)
