"""Inception image preprocessing in TensorFlow ops (graph-safe: no py_function).

Evaluation: central 87.5% crop of each side, bilinear resize to the model size, pixels to [-1, 1]
(as TF-slim's `inception_preprocessing.preprocess_for_eval`). JPEG bytes take the fused
`decode_and_crop_jpeg` path, which decodes only the crop; PNG, GIF, BMP and anything else
`tf.io.decode_image` reads go through a full decode.
"""

import tensorflow as tf

from inception_keras.choices import COLOR_DISTORTIONS

EVAL_CENTRAL_FRACTION = 0.875


def scale_to_unit_range(image):
    """Maps pixels in [0, 255] (any float or integer dtype) to float32 [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def _is_webp(image_bytes):
    header = tf.strings.substr(tf.strings.join([image_bytes, b"\0" * 12]), 0, 12)
    return tf.logical_and(
        tf.equal(tf.strings.substr(header, 0, 4), b"RIFF"),
        tf.equal(tf.strings.substr(header, 8, 4), b"WEBP"),
    )


def decode_rgb(image_bytes):
    """Decodes encoded image bytes to uint8 [H, W, 3]: JPEG (incl. grayscale/CMYK), PNG (16-bit
    kept to its high byte, alpha dropped), the first frame of a GIF, BMP, WebP (TF 2.21)."""

    def webp():  # TF's WebP decoder refuses channels=3 for images with alpha: drop it here
        return tf.io.decode_image(image_bytes, channels=0, expand_animations=False)[:, :, :3]

    def other():
        return tf.io.decode_image(image_bytes, channels=3, expand_animations=False)

    image = tf.cond(_is_webp(image_bytes), webp, other)
    image.set_shape([None, None, 3])
    return image


def _central_crop_window(height, width, fraction):
    crop_height = tf.maximum(tf.cast(tf.cast(height, tf.float32) * fraction, tf.int32), 1)
    crop_width = tf.maximum(tf.cast(tf.cast(width, tf.float32) * fraction, tf.int32), 1)
    offset_y = (height - crop_height) // 2
    offset_x = (width - crop_width) // 2
    return tf.stack([offset_y, offset_x, crop_height, crop_width])


def _decode_and_central_crop(image_bytes, fraction):
    def jpeg():
        shape = tf.image.extract_jpeg_shape(image_bytes)
        window = _central_crop_window(shape[0], shape[1], fraction)
        return tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)

    def other():
        image = decode_rgb(image_bytes)
        shape = tf.shape(image)
        y, x, h, w = tf.unstack(_central_crop_window(shape[0], shape[1], fraction))
        return image[y : y + h, x : x + w, :]

    image = tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
    image.set_shape([None, None, 3])
    return image


def preprocess_for_eval(image_bytes, image_size, central_fraction=EVAL_CENTRAL_FRACTION):
    """Encoded image bytes (scalar tf.string) -> float32 [image_size, image_size, 3] in [-1, 1]."""
    image = _decode_and_central_crop(image_bytes, central_fraction)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear")
    return scale_to_unit_range(image)


# --- Training preprocessing -----------------------------------------------------------------
# As TF-slim's and the Cloud TPU reference's `preprocess_for_train` (fast mode): a random box
# covering 5%-100% of the image with aspect 3/4-4/3 (`distorted_bounding_box_crop`, 100 tries,
# else the whole image), bilinear resize, random flip, then one of the colour distortions below.

TRAIN_AREA_RANGE = (0.05, 1.0)
TRAIN_ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_ATTEMPTS = 100
_WHOLE_IMAGE_BOX = ((0.0, 0.0, 1.0, 1.0),)

BRIGHTNESS_MAX_DELTA = 32.0 / 255.0  # both references, on pixels in [0, 1]
SATURATION_RANGE = (0.5, 1.5)  # slim
CHROMA_MAX_DELTA = 0.1  # the TPU reference's cb_distortion_range and cr_distortion_range
# slim's first release draws one of four orderings per image; in fast mode ordering 0 is
# brightness-then-saturation and orderings 1-3 are saturation-then-brightness.
SLIM_BRIGHTNESS_FIRST_PROBABILITY = 0.25
# How a unit shift of (Cb, Cr) moves (R, G, B): the JPEG/JFIF YCbCr -> RGB matrix (ITU-R BT.601).
_CHROMA_TO_RGB = ((0.0, 1.402), (-0.344136, -0.714136), (1.772, 0.0))


def _random_crop_window(image_shape, seed, area_range, aspect_ratio_range):
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape,
        bounding_boxes=tf.constant([_WHOLE_IMAGE_BOX], tf.float32),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=CROP_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def _decode_and_random_crop(image_bytes, seed, area_range, aspect_ratio_range):
    def jpeg():
        shape = tf.image.extract_jpeg_shape(image_bytes)
        window = _random_crop_window(shape, seed, area_range, aspect_ratio_range)
        return tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)

    def other():
        image = decode_rgb(image_bytes)
        window = _random_crop_window(tf.shape(image), seed, area_range, aspect_ratio_range)
        y, x, h, w = tf.unstack(window)
        return image[y : y + h, x : x + w, :]

    image = tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
    image.set_shape([None, None, 3])
    return image


def distort_color_slim_fast(image, seed):
    """TF-slim's fast-mode `distort_color`: random brightness (+-32/255) and saturation
    (x0.5-1.5), brightness first in 1 of 4 images, on a float image in [0, 1]; stays in [0, 1]."""
    brightness_seed, saturation_seed, order_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 3))

    def brightness(x):
        return tf.image.stateless_random_brightness(x, BRIGHTNESS_MAX_DELTA, brightness_seed)

    def saturation(x):
        return tf.image.stateless_random_saturation(x, *SATURATION_RANGE, saturation_seed)

    brightness_first = (tf.random.stateless_uniform([], order_seed)
                        < SLIM_BRIGHTNESS_FIRST_PROBABILITY)
    image = tf.cond(brightness_first, lambda: saturation(brightness(image)),
                    lambda: brightness(saturation(image)))
    return tf.clip_by_value(image, 0.0, 1.0)


def shift_brightness_and_chroma(image, brightness, cb, cr):
    """Adds `brightness` to every channel and shifts the JPEG YCbCr chroma by (`cb`, `cr`) of a
    float RGB image in [0, 1] (luma unchanged); clipped to [0, 1]."""
    offsets = brightness + tf.linalg.matvec(tf.constant(_CHROMA_TO_RGB, tf.float32),
                                            tf.stack([cb, cr]))
    return tf.clip_by_value(image + offsets, 0.0, 1.0)


def distort_color_tpu_fast(image, seed):
    """The TPU reference's `distort_color_fast`: one brightness shift (+-32/255) and Cb and Cr
    shifts (+-0.1 each) drawn per image, on a float image in [0, 1]; stays in [0, 1]."""
    unit = tf.random.stateless_uniform([3], seed, minval=-1.0, maxval=1.0)
    return shift_brightness_and_chroma(image, unit[0] * BRIGHTNESS_MAX_DELTA,
                                       unit[1] * CHROMA_MAX_DELTA, unit[2] * CHROMA_MAX_DELTA)


_DISTORTIONS = {"slim_fast": distort_color_slim_fast, "tpu_fast": distort_color_tpu_fast}


def color_distortion_mode(color_distortion):
    """A mode name from COLOR_DISTORTIONS; False/None mean "none" and True "slim_fast" (older
    callers passed a bool)."""
    if color_distortion is None or color_distortion is False:
        return "none"
    if color_distortion is True:
        return "slim_fast"
    if color_distortion not in COLOR_DISTORTIONS:
        raise ValueError(f"unknown color_distortion {color_distortion!r}: use one of "
                         f"{', '.join(COLOR_DISTORTIONS)}")
    return color_distortion


def preprocess_for_train(
    image_bytes,
    image_size,
    seed=None,
    *,
    color_distortion="none",
    area_range=TRAIN_AREA_RANGE,
    aspect_ratio_range=TRAIN_ASPECT_RATIO_RANGE,
):
    """Encoded image bytes -> randomly cropped, resized, flipped float32 [S, S, 3] in [-1, 1].

    `seed` is a shape-[2] integer tensor for the stateless random ops (same seed, same output);
    None draws one. JPEGs decode only the crop window (`decode_and_crop_jpeg`).
    `color_distortion` is one of COLOR_DISTORTIONS ("none", "slim_fast", "tpu_fast").
    """
    mode = color_distortion_mode(color_distortion)
    if seed is None:
        seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
    crop_seed, flip_seed, color_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    image = _decode_and_random_crop(image_bytes, crop_seed, area_range, aspect_ratio_range)
    # Flipping the uint8 crop moves fewer bytes than flipping the output; resizing float32 input
    # is about twice as fast as resizing uint8 (measured with TF 2.21 on a 2-core x86 CPU), cast
    # included.
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size], method="bilinear")
    if mode == "none":
        return scale_to_unit_range(image)
    image = _DISTORTIONS[mode](image / 255.0, color_seed)
    return image * 2.0 - 1.0
