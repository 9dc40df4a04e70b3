"""Inception image preprocessing in TensorFlow ops (graph-safe: no py_function).

Evaluation: central 87.5% crop of each side, bilinear resize to the model size, pixels to [-1, 1]
(as TF-slim's `inception_preprocessing.preprocess_for_eval`). JPEG bytes take the fused
`decode_and_crop_jpeg` path, which decodes only the crop; PNG, GIF, BMP and anything else
`tf.io.decode_image` reads go through a full decode.
"""

import tensorflow as tf

EVAL_CENTRAL_FRACTION = 0.875


def scale_to_unit_range(image):
    """Maps pixels in [0, 255] (any float or integer dtype) to float32 [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def decode_rgb(image_bytes):
    """Decodes encoded image bytes (JPEG incl. grayscale/CMYK, PNG, GIF, BMP) to uint8 [H, W, 3]."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
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
# Inception-style random crop: any box covering 5%-100% of the image with aspect 3/4-4/3
# (as TF-slim's `distorted_bounding_box_crop`), flip, optional colour distortion.

TRAIN_AREA_RANGE = (0.05, 1.0)
TRAIN_ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
_WHOLE_IMAGE_BOX = ((0.0, 0.0, 1.0, 1.0),)


def _random_crop_window(image_shape, seed, area_range, aspect_ratio_range):
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape,
        bounding_boxes=tf.constant([_WHOLE_IMAGE_BOX], tf.float32),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=10,
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


def distort_color(image, seed):
    """Random brightness, saturation, hue and contrast of a float image in [0, 1]; stays in [0, 1]."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    image = tf.image.stateless_random_brightness(image, 32.0 / 255.0, seeds[0])
    image = tf.image.stateless_random_saturation(image, 0.5, 1.5, seeds[1])
    image = tf.image.stateless_random_hue(image, 0.2, seeds[2])
    image = tf.image.stateless_random_contrast(image, 0.5, 1.5, seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def preprocess_for_train(
    image_bytes,
    image_size,
    seed=None,
    *,
    color_distortion=False,
    area_range=TRAIN_AREA_RANGE,
    aspect_ratio_range=TRAIN_ASPECT_RATIO_RANGE,
):
    """Encoded image bytes -> randomly cropped, resized, flipped float32 [S, S, 3] in [-1, 1].

    `seed` is a shape-[2] integer tensor for the stateless random ops (same seed, same output);
    None draws one. JPEGs decode only the crop window (`decode_and_crop_jpeg`).
    """
    if seed is None:
        seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
    crop_seed, flip_seed, color_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    image = _decode_and_random_crop(image_bytes, crop_seed, area_range, aspect_ratio_range)
    # Flipping the uint8 crop moves fewer bytes than flipping the output; resizing float32 input
    # is about twice as fast as resizing uint8 (measured on TF 2.21 CPU), cast included.
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size], method="bilinear")
    if not color_distortion:
        return scale_to_unit_range(image)
    image = distort_color(image / 255.0, color_seed)
    return image * 2.0 - 1.0
