"""The image operations RandAugment and AugMix choose from (`augment.py`), in TensorFlow ops.

Every op takes a float32 [H, W, 3] image in [0, 1], a `strength` in [0, 1] (the policy's
magnitude / 10, Keras' `factor`) and a stateless seed (shape [2]) for its random signs, and
returns an image of the same shape in [0, 1]. The list is Keras 3's RandAugment list; each op's
range at full strength is the one of the RandAugment/AutoAugment papers, as timm's increasing
ops scale it with the magnitude:

| op | at strength f |
| --- | --- |
| shear | x and y shear factors of +-0.3 f each (independent signs), about the centre |
| translate | x and y shifts of +-0.45 f of the side (timm's translate_pct) |
| rotate | +-30 f degrees about the centre |
| brightness, color, contrast, sharpness | PIL's enhancers at 1 +- 0.9 f |
| posterize | 8 - int(4 f) bits per channel (4 at f = 1, as AutoAugment's range) |
| solarize | pixels at or above 256 (1 - f) / 255 inverted |
| auto_contrast, equalize | no strength (PIL's `autocontrast` and `equalize`) |

Geometric ops fill what they uncover with mid grey (timm's fill), bilinearly interpolated.
`paste_patch` puts a patch into images (random erasing, CutMix).
"""

import math

import tensorflow as tf

SHEAR_MAX = 0.3
TRANSLATE_MAX = 0.45
ROTATE_MAX_DEGREES = 30.0
ENHANCE_MAX = 0.9
POSTERIZE_MAX_BITS_REMOVED = 4
FILL_VALUE = 0.5
_GREY_WEIGHTS = (0.299, 0.587, 0.114)  # PIL's "L" conversion, as tf.image.rgb_to_grayscale
_SMOOTH_KERNEL = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))  # PIL's SMOOTH, sum 13


def random_signs(seed, count):
    """`count` float32 values of +-1 (shape [count])."""
    return tf.where(tf.random.stateless_uniform([count], seed) < 0.5, -1.0, 1.0)


def _transform(image, output_to_input):
    """Samples `image` at `output_to_input` (3x3, pixel coordinates x = column, y = row)."""
    parameters = tf.reshape(output_to_input, [9])[:8] / output_to_input[2, 2]
    transformed = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis],
        transforms=parameters[tf.newaxis],
        output_shape=tf.shape(image)[:2],
        fill_value=FILL_VALUE,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    return tf.ensure_shape(transformed, image.shape)


def _about_centre(image, linear):
    """The 3x3 output->input map applying the 2x2 `linear` map about the image's centre."""
    shape = tf.cast(tf.shape(image), tf.float32)
    centre = tf.stack([(shape[1] - 1.0) / 2.0, (shape[0] - 1.0) / 2.0])
    offset = centre - tf.linalg.matvec(linear, centre)
    top = tf.concat([linear, offset[:, tf.newaxis]], axis=1)
    return tf.concat([top, tf.constant([[0.0, 0.0, 1.0]])], axis=0)


def shear(image, strength, seed):
    sx, sy = tf.unstack(random_signs(seed, 2) * SHEAR_MAX * strength)
    return _transform(image, _about_centre(image, tf.stack([[1.0, sx], [sy, 1.0]])))


def translate(image, strength, seed):
    shape = tf.cast(tf.shape(image), tf.float32)
    fractions = random_signs(seed, 2) * TRANSLATE_MAX * strength
    dx, dy = fractions[0] * shape[1], fractions[1] * shape[0]
    return _transform(image, tf.stack([[1.0, 0.0, -dx], [0.0, 1.0, -dy], [0.0, 0.0, 1.0]]))


def rotate(image, strength, seed):
    angle = random_signs(seed, 1)[0] * math.radians(ROTATE_MAX_DEGREES) * strength
    cos, sin = tf.cos(angle), tf.sin(angle)
    return _transform(image, _about_centre(image, tf.stack([[cos, -sin], [sin, cos]])))


def paste_patch(images, patch, top, left):
    """`images` [..., H, W, C] with `patch` [..., h, w, C] in place at row `top`, column `left`.

    Slices and concatenations: a `tf.where` with a broadcast [H, W, 1] box mask is several times
    slower on CPU.
    """
    shape = tf.shape(patch)
    bottom, right = top + shape[-3], left + shape[-2]
    band = tf.concat([images[..., top:bottom, :left, :], patch, images[..., top:bottom, right:, :]],
                     axis=-2)
    pasted = tf.concat([images[..., :top, :, :], band, images[..., bottom:, :, :]], axis=-3)
    return tf.ensure_shape(pasted, images.shape)


def _enhance_factor(strength, seed):
    return 1.0 + random_signs(seed, 1)[0] * ENHANCE_MAX * strength


def _blend(degenerate, image, factor):
    """PIL's ImageEnhance: degenerate + factor (image - degenerate), clipped to [0, 1]."""
    return tf.clip_by_value(degenerate + factor * (image - degenerate), 0.0, 1.0)


def _grey(image):
    return tf.tensordot(image, tf.constant(_GREY_WEIGHTS)[:, tf.newaxis], axes=1)


def brightness(image, strength, seed):
    return tf.clip_by_value(image * _enhance_factor(strength, seed), 0.0, 1.0)  # blend with black


def color(image, strength, seed):
    return _blend(_grey(image), image, _enhance_factor(strength, seed))


def contrast(image, strength, seed):
    return _blend(tf.reduce_mean(_grey(image)), image, _enhance_factor(strength, seed))


def sharpness(image, strength, seed):
    """Blends with PIL's SMOOTH filter of the image; border pixels stay as they are (as PIL)."""
    kernel = tf.constant(_SMOOTH_KERNEL) / 13.0
    kernel = tf.tile(kernel[:, :, tf.newaxis, tf.newaxis], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(image[tf.newaxis], kernel, [1, 1, 1, 1], "VALID")[0]
    return _blend(paste_patch(image, smooth, 1, 1), image, _enhance_factor(strength, seed))


def _to_levels(image):
    return tf.cast(tf.round(image * 255.0), tf.int32)


def posterize(image, strength, seed):
    del seed  # no randomness
    removed = int(POSTERIZE_MAX_BITS_REMOVED * strength)
    kept = tf.bitwise.bitwise_and(_to_levels(image), 0xFF ^ ((1 << removed) - 1))
    return tf.cast(kept, tf.float32) / 255.0


def solarize(image, strength, seed):
    del seed
    threshold = 256.0 * (1.0 - strength) / 255.0
    return tf.where(image >= threshold, 1.0 - image, image)


def auto_contrast(image, strength, seed):
    """Each channel stretched to [0, 1] (channels of one value stay as they are)."""
    del strength, seed
    pixels = tf.reshape(image, [-1, 3])
    low, high = tf.reduce_min(pixels, axis=0), tf.reduce_max(pixels, axis=0)
    spread = high > low
    scale = tf.where(spread, 1.0 / tf.maximum(high - low, 1e-6), 1.0)
    return (image - tf.where(spread, low, 0.0)) * scale


def _equalize_channel(levels):
    """PIL's `ImageOps.equalize` of one channel of levels 0..255."""
    histogram = tf.math.bincount(levels, minlength=256, maxlength=256)
    last = tf.gather(histogram, tf.reduce_max(levels))  # the count of the highest level present
    step = (tf.reduce_sum(histogram) - last) // 255
    lookup = (tf.cumsum(histogram, exclusive=True) + step // 2) // tf.maximum(step, 1)
    return tf.cond(step > 0, lambda: tf.gather(tf.minimum(lookup, 255), levels), lambda: levels)


def equalize(image, strength, seed):
    del strength, seed
    channels = tf.unstack(_to_levels(image), axis=-1)
    return tf.cast(tf.stack([_equalize_channel(c) for c in channels], axis=-1), tf.float32) / 255.0


# Keras 3's RandAugment order.
OPS = (shear, translate, rotate, brightness, color, contrast, sharpness, posterize, solarize,
       auto_contrast, equalize)


def apply_op(index, image, strength, seed):
    """OPS[index] (a scalar int32 tensor) of `image`; only the chosen op runs."""
    return tf.switch_case(index, [lambda op=op: op(image, strength, seed) for op in OPS])
