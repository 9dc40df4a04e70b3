"""Per-image training augmentation: RandAugment or AugMix, then random erasing.

`augment_examples(examples, augmentation, seed, deterministic)` maps unbatched training
(image, class id) examples, images float32 in [-1, 1], through `augment_image` in parallel, each
example with its own stateless seed (`seeds.py`), so a seeded, `deterministic` pipeline is
reproducible however many map calls run at once.

Policies (`Augmentation.policy`), the ones Keras 3 ships (it has no AutoAugment):
- `randaugment` (Cubuk et al. 2019): `layers` ops per image, each drawn uniformly from Keras'
  RandAugment list (`image_ops.OPS`) and applied at the fixed magnitude with a random sign
  (always, as the paper and Keras; timm applies each with probability 0.5).
- `augmix` (Hendrycks et al. 2020): 3 chains of 1-3 random ops each (depth drawn per chain),
  mixed with Dirichlet(1, 1, 1) weights, the mix blended with the image by m ~ Beta(1, 1), as
  the paper and timm's `augmix` (Keras' `all_ops=True` list).
`random_erasing` (Zhong et al. 2017, timm's `reprob`): with that probability per image, one
rectangle of 2%-33% of the area, aspect 0.3-3.3 (log-uniform), the first of 10 tries that fits,
is replaced by per-pixel normal noise: timm's N(0, 1) in ImageNet mean/std-normalized pixels,
written in the [-1, 1] scale our model reads (per channel: mean 2 m - 1, standard deviation
2 s, with ImageNet's RGB m and s), clipped to [-1, 1] so the images keep the range evaluation
and serving see (3-4% of the noise is clipped).

Magnitude: timm's 0-10 scale (`rand-m9` is 9). Keras' `factor` is the same strength as a
fraction, so factor = magnitude / 10 for both policies; Keras' AugMix default factor 0.3 is the
AugMix paper's severity 3 on this scale. What a factor does to each op is in `image_ops.py`:
the papers' ranges (rotate +-30 degrees, ...) times the factor. Keras' own layers would read it
as one-sided ranges of the whole scale instead (RandomRotation(factor=(0, 0.9)): 0 to 324
degrees; RandomTranslation: 0 to 90% of the side), which no published recipe uses.

Why not Keras' layers: `keras.layers.RandAugment`, `AugMix`, `RandomErasing`, `MixUp` and
`CutMix` draw from a stateful `SeedGenerator`; their `get_random_transformation(data, seed=...)`
accepts only an int or a SeedGenerator (Keras' `draw_seed` rejects a seed tensor), RandAugment
ignores that argument, and AugMix picks its chains' ops with Python's `random` when traced, so in
a `tf.data` map (traced once) every image would get the same ops. A stateful generator under
parallel maps is not reproducible. Ours are small stateless TensorFlow ops instead; RandAugment
also runs only the chosen op (Keras computes all 11 for every op slot and selects one).
"""

import dataclasses
import math

import tensorflow as tf

from inception_keras.choices import AUGMENT_POLICIES
from inception_keras.data.errors import DataError, check_number
from inception_keras.data.image_ops import OPS, apply_op, paste_patch
from inception_keras.data.seeds import AUGMENT_STREAM, map_with_seeds

MAX_MAGNITUDE = 10.0
AUGMIX_WIDTH = 3
AUGMIX_MAX_DEPTH = 3
AUGMIX_ALPHA = 1.0
ERASING_AREA = (0.02, 1.0 / 3.0)
ERASING_ASPECT = (0.3, 1.0 / 0.3)
ERASING_TRIES = 10
IMAGENET_RGB_MEAN = (0.485, 0.456, 0.406)  # of pixels in [0, 1], as timm and torchvision
IMAGENET_RGB_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What `augment_image` does to each training image; checked on creation (DataError).

    policy: one of AUGMENT_POLICIES.
    magnitude: timm's 0-10 scale (the op strength is magnitude / 10, see the module docstring).
    layers: RandAugment's ops per image (timm's n).
    random_erasing: the probability per image of erasing one rectangle.
    """

    policy: str = "none"
    magnitude: float = 9.0
    layers: int = 2
    random_erasing: float = 0.0

    def __post_init__(self):
        if self.policy not in AUGMENT_POLICIES:
            raise DataError(f"unknown augment policy {self.policy!r}; use one of "
                            f"{', '.join(AUGMENT_POLICIES)}")
        check_number("augment_magnitude", self.magnitude, 0.0, MAX_MAGNITUDE)
        check_number("augment_layers", self.layers, 1, None, integer=True)
        check_number("random_erasing", self.random_erasing, 0.0, 1.0)

    @property
    def enabled(self):
        return self.policy != "none" or self.random_erasing > 0

    @property
    def strength(self):
        """Keras' `factor`: the magnitude as a fraction of the scale's maximum."""
        return float(self.magnitude) / MAX_MAGNITUDE


def _split(seed, count):
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def _random_op(image, seed, strength):
    """One op of `image_ops.OPS`, drawn uniformly, applied to `image`."""
    choice_seed, op_seed = _split(seed, 2)
    index = tf.random.stateless_uniform([], choice_seed, maxval=len(OPS), dtype=tf.int32)
    return apply_op(index, image, strength, op_seed)


def _random_ops(image, seed, strength, count):
    """`count` (an int tensor) random ops in a row. A loop, not unrolled: every op is traced
    once, however many run."""
    return tf.while_loop(
        lambda step, image: step < count,
        lambda step, image: (step + 1, _random_op(image, _fold_in(seed, step), strength)),
        (tf.constant(0), image),
    )[1]


def _fold_in(seed, number):
    return tf.random.experimental.stateless_fold_in(seed, number)


def rand_augment(image, seed, strength, layers):
    """`layers` ops of `image_ops.OPS`, each drawn uniformly, on a float32 image in [0, 1]."""
    return _random_ops(image, seed, strength, layers)


def aug_mix(image, seed, strength):
    """AugMix of a float32 image in [0, 1] (see the module docstring); stays in [0, 1]."""
    weight_seed, blend_seed, chains_seed = _split(seed, 3)
    weights = tf.random.stateless_gamma([AUGMIX_WIDTH], weight_seed, alpha=AUGMIX_ALPHA)
    weights /= tf.reduce_sum(weights)
    gammas = tf.random.stateless_gamma([2], blend_seed, alpha=AUGMIX_ALPHA)
    blend = gammas[0] / tf.reduce_sum(gammas)

    def add_chain(chain_index, mixed):
        depth_seed, ops_seed = _split(_fold_in(chains_seed, chain_index), 2)
        depth = tf.random.stateless_uniform(
            [], depth_seed, minval=1, maxval=AUGMIX_MAX_DEPTH + 1, dtype=tf.int32)
        chain = _random_ops(image, ops_seed, strength, depth)
        return chain_index + 1, mixed + weights[chain_index] * chain

    _, mixed = tf.while_loop(lambda chain_index, mixed: chain_index < AUGMIX_WIDTH, add_chain,
                             (tf.constant(0), tf.zeros_like(image)))
    return tf.clip_by_value(blend * image + (1.0 - blend) * mixed, 0.0, 1.0)


def _erasing_box(seed, height, width):
    """(top, left, box height, box width, found) of timm's random erasing rectangle."""
    size_seed, position_seed = _split(seed, 2)
    area = tf.cast(height * width, tf.float32)
    draws = tf.random.stateless_uniform([ERASING_TRIES, 2], size_seed)
    target = area * (ERASING_AREA[0] + draws[:, 0] * (ERASING_AREA[1] - ERASING_AREA[0]))
    low, high = math.log(ERASING_ASPECT[0]), math.log(ERASING_ASPECT[1])
    aspect = tf.exp(low + draws[:, 1] * (high - low))
    box_heights = tf.cast(tf.round(tf.sqrt(target * aspect)), tf.int32)
    box_widths = tf.cast(tf.round(tf.sqrt(target / aspect)), tf.int32)
    fits = tf.logical_and(box_heights < height, box_widths < width)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)  # 0 when none fits
    box_height, box_width = box_heights[first], box_widths[first]
    position = tf.random.stateless_uniform([2], position_seed)
    top = tf.cast(position[0] * tf.cast(height - box_height + 1, tf.float32), tf.int32)
    left = tf.cast(position[1] * tf.cast(width - box_width + 1, tf.float32), tf.int32)
    return top, left, box_height, box_width, tf.reduce_any(fits)


def random_erase(image, seed, probability):
    """With `probability`, one random rectangle of a float32 [-1, 1] image set to noise (see
    the module docstring)."""
    apply_seed, box_seed, noise_seed = _split(seed, 3)
    shape = tf.shape(image)
    top, left, box_height, box_width, found = _erasing_box(box_seed, shape[0], shape[1])
    erase = found & (tf.random.stateless_uniform([], apply_seed) < probability)

    def erased():
        noise = tf.random.stateless_normal(tf.stack([box_height, box_width, 3]), noise_seed)
        noise = noise * (2.0 * tf.constant(IMAGENET_RGB_STD)) + (
            2.0 * tf.constant(IMAGENET_RGB_MEAN) - 1.0)
        return paste_patch(image, tf.clip_by_value(noise, -1.0, 1.0), top, left)

    return tf.cond(erase, erased, lambda: image)


def augment_image(image, seed, augmentation):
    """The policy, then random erasing, of a float32 [S, S, 3] image in [-1, 1]; same range."""
    policy_seed, erasing_seed = _split(seed, 2)
    if augmentation.policy != "none":
        unit = (image + 1.0) / 2.0
        if augmentation.policy == "randaugment":
            unit = rand_augment(unit, policy_seed, augmentation.strength, augmentation.layers)
        else:
            unit = aug_mix(unit, policy_seed, augmentation.strength)
        image = unit * 2.0 - 1.0
    if augmentation.random_erasing > 0:
        image = random_erase(image, erasing_seed, augmentation.random_erasing)
    return image


def augment_examples(examples, augmentation, seed, *, deterministic):
    """Unbatched (image, label) examples with `augment_image` applied (a no-op if not enabled).

    `seed` is this input pipeline's (None: random); the output order is the input order when
    `deterministic`.
    """
    if not augmentation.enabled:
        return examples

    def augment(example, example_seed):
        image, label = example
        return augment_image(image, example_seed, augmentation), label

    return map_with_seeds(examples, augment, seed, AUGMENT_STREAM, deterministic=deterministic)
