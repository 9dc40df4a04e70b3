import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data import preprocess_for_eval, preprocess_for_train

SEED = tf.constant([3, 7])


def _in_unit_range(image):
    return float(tf.reduce_min(image)) >= -1.0 and float(tf.reduce_max(image)) <= 1.0


@pytest.mark.parametrize("color_distortion", [False, True])
def test_train_output_shape_dtype_and_range(encoded_image, color_distortion):
    image = preprocess_for_train(encoded_image(50, 70), 32, SEED, color_distortion=color_distortion)
    assert image.shape == (32, 32, 3) and image.dtype == tf.float32
    assert _in_unit_range(image)


def test_eval_output_shape_dtype_and_range(encoded_image):
    image = preprocess_for_eval(encoded_image(50, 70), 24)
    assert image.shape == (24, 24, 3) and image.dtype == tf.float32
    assert _in_unit_range(image)


def test_train_is_a_function_of_the_seed(encoded_image):
    data = encoded_image(60, 60)
    first = preprocess_for_train(data, 16, SEED)
    assert np.array_equal(first, preprocess_for_train(data, 16, SEED))
    assert not np.array_equal(first, preprocess_for_train(data, 16, tf.constant([4, 7])))


def test_train_crop_is_a_sub_window_of_the_image():
    # Left half black, right half white: a crop that stays in one half is uniform, and the mean
    # over many seeds is mid-grey only if crops cover the image evenly (flips included).
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:, 32:] = 255
    data = tf.io.encode_png(pixels)
    means = [
        float(tf.reduce_mean(preprocess_for_train(data, 8, tf.constant([s, 0])))) for s in range(40)
    ]
    assert min(means) < -0.2 and max(means) > 0.2  # some crops favour one half
    assert abs(np.mean(means)) < 0.3


def test_jpeg_fast_path_and_png_slow_path_crop_the_same_window(encoded_image):
    pixels = tf.io.decode_png(encoded_image(40, 56, image_format="png"))
    smooth = tf.cast(tf.image.resize(tf.image.resize(pixels, [5, 7]), [40, 56]), tf.uint8)
    jpeg, png = tf.io.encode_jpeg(smooth, quality=100), tf.io.encode_png(smooth)
    for seed in ([1, 2], [5, 9]):
        a = preprocess_for_train(jpeg, 16, tf.constant(seed))
        b = preprocess_for_train(png, 16, tf.constant(seed))
        assert float(tf.reduce_max(tf.abs(a - b))) < 0.1


def test_eval_is_a_central_crop():
    pixels = np.zeros((80, 80, 3), np.uint8)
    pixels[:5] = 255  # a border outside the central 87.5% (5 px of 80)
    image = preprocess_for_eval(tf.io.encode_png(pixels), 10)
    assert float(tf.reduce_max(image)) == -1.0


@pytest.mark.parametrize("image_format,channels", [("png", 3), ("png", 1), ("jpeg", 1)])
def test_non_rgb_jpeg_and_png_decode_to_rgb(encoded_image, image_format, channels):
    data = encoded_image(30, 20, value=200, channels=channels, image_format=image_format)
    for image in (preprocess_for_train(data, 12, SEED), preprocess_for_eval(data, 12)):
        assert image.shape == (12, 12, 3)
        assert np.allclose(image, 200 / 127.5 - 1.0, atol=0.02)


def test_cmyk_jpeg_decodes():
    pil = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    pil.new("CMYK", (24, 16), (0, 255, 255, 0)).save(buffer, format="JPEG", quality=95)  # red
    image = preprocess_for_train(buffer.getvalue(), 8, SEED)
    red, green = float(tf.reduce_mean(image[..., 0])), float(tf.reduce_mean(image[..., 1]))
    assert red > 0.5 and green < -0.5
