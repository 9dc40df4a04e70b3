"""Multi-crop evaluation against a slow numpy reference that crops by explicit pixel positions."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.data.multicrop import (
    average_predictions,
    crop_scales,
    multi_crop,
)
from inception_keras.data.preprocessing import decode_rgb, preprocess_for_eval

SIZE = 75


def smooth_image(height, width, seed=0):
    """Smooth random colours (so crops at different places differ, and PNG stays exact)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (1, 6, 7, 3))
    return tf.cast(tf.image.resize(coarse, [height, width]), tf.uint8).numpy()[0]


def resize(image, height, width):
    return tf.image.resize(image, [height, width], method="bilinear").numpy()


def reference_crops(encoded, size, crops):
    """The protocol spelled out: numpy slicing at computed corners, numpy mirroring. 12 crops:
    the 144 crops' first scale (256/224) and its centre square only."""
    image = decode_rgb(tf.constant(encoded)).numpy().astype(np.float32)
    height, width = image.shape[:2]
    scales = [256] if crops in (10, 12) else [256, 288, 320, 352]
    out = []
    for scale in scales:
        side = int(round(size * scale / 224))
        if height <= width:
            new_h, new_w = side, int(round(width * side / height))
        else:
            new_h, new_w = int(round(height * side / width)), side
        resized = resize(image, new_h, new_w)
        if crops == 10:
            regions = [resized]
        else:
            extra = max(new_h, new_w) - side
            regions = []
            for offset in (0, extra // 2, extra):
                if new_w >= new_h:
                    regions.append(resized[:, offset : offset + side])
                else:
                    regions.append(resized[offset : offset + side, :])
            if crops == 12:
                regions = regions[1:2]
        for region in regions:
            h, w = region.shape[:2]
            top, left = (h - size) // 2, (w - size) // 2
            views = [
                region[:size, :size],
                region[:size, w - size :],
                region[h - size :, :size],
                region[h - size :, w - size :],
                region[top : top + size, left : left + size],
            ]
            if crops in (12, 144):
                views.append(resize(region, size, size))
            for view in views:
                out += [view, view[:, ::-1]]
    return np.stack(out) / 127.5 - 1.0


@pytest.mark.parametrize("crops", [10, 12, 144])
@pytest.mark.parametrize(
    "shape, image_format", [((90, 130), "png"), ((121, 84), "png"), ((100, 100), "jpeg")]
)
def test_multi_crop_matches_the_numpy_reference(crops, shape, image_format):
    pixels = smooth_image(*shape)
    encoded = (tf.io.encode_png(pixels) if image_format == "png" else tf.io.encode_jpeg(pixels)).numpy()
    got = multi_crop(tf.constant(encoded), SIZE, crops).numpy()
    expected = reference_crops(encoded, SIZE, crops)
    assert got.shape == (crops, SIZE, SIZE, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.min() >= -1.0 and got.max() <= 1.0
    np.testing.assert_array_equal(got[1::2], got[0::2, :, ::-1])  # each crop, then its mirror
    assert not np.allclose(got[0], got[1])


def test_single_crop_is_the_eval_preprocessing():
    encoded = tf.io.encode_jpeg(smooth_image(80, 110)).numpy()
    got = multi_crop(tf.constant(encoded), SIZE, 1).numpy()
    np.testing.assert_array_equal(got, preprocess_for_eval(tf.constant(encoded), SIZE).numpy()[None])


def test_multi_crop_in_a_dataset_has_static_shapes():
    encoded = [tf.io.encode_png(smooth_image(90, 120, seed)).numpy() for seed in range(2)]
    dataset = tf.data.Dataset.from_tensor_slices(encoded).map(lambda b: multi_crop(b, SIZE, 10))
    assert dataset.element_spec.shape == (10, SIZE, SIZE, 3)
    assert dataset.unbatch().batch(10).element_spec.shape == (None, SIZE, SIZE, 3)
    assert len(list(dataset)) == 2


def test_scales_follow_the_model_size():
    assert crop_scales(224, 144) == (256, 288, 320, 352)
    assert crop_scales(299, 144) == (342, 384, 427, 470)
    assert crop_scales(299, 10) == crop_scales(299, 12) == (342,)
    with pytest.raises(ValueError, match="eval_crops"):
        crop_scales(299, 11)
    with pytest.raises(ValueError, match="eval_crops"):
        multi_crop(tf.constant(b""), SIZE, 5)


def test_twelve_crops_are_the_centre_square_of_the_first_scale():
    """Landscape 90 x 130 at S = 75: shorter side to round(75 * 256/224) = 86, so 86 x 124; its
    centre square starts at column (124 - 86) // 2 = 19; crop 4 (the centre crop) starts 5 px
    into it, crop 10 is the whole square resized (and 11 its mirror)."""
    encoded = tf.io.encode_png(smooth_image(90, 130)).numpy()
    got = multi_crop(tf.constant(encoded), SIZE, 12).numpy()
    resized = resize(decode_rgb(tf.constant(encoded)).numpy().astype(np.float32), 86, 124)
    square = resized[:, 19:19 + 86]
    np.testing.assert_allclose(got[0], square[:SIZE, :SIZE] / 127.5 - 1.0, atol=1e-5)
    np.testing.assert_allclose(got[8], square[5:5 + SIZE, 5:5 + SIZE] / 127.5 - 1.0, atol=1e-5)
    np.testing.assert_allclose(got[10], resize(square, SIZE, SIZE) / 127.5 - 1.0, atol=1e-5)
    np.testing.assert_array_equal(got[11], got[10][:, ::-1])
    every_144 = multi_crop(tf.constant(encoded), SIZE, 144).numpy()
    np.testing.assert_array_equal(got, every_144[12:24])  # scale 1, square 2 of the 144


def test_average_predictions_both_layouts():
    logits = np.random.default_rng(0).normal(size=(3, 10, 4)).astype(np.float32)
    probabilities = tf.nn.softmax(logits).numpy()
    expected = probabilities.mean(axis=1)
    np.testing.assert_allclose(average_predictions(probabilities), expected, rtol=1e-6)
    np.testing.assert_allclose(
        average_predictions(probabilities.reshape(30, 4), crops=10), expected, rtol=1e-6
    )
    np.testing.assert_allclose(
        average_predictions(logits.reshape(30, 4), 10, from_logits=True), expected, rtol=1e-6
    )
    np.testing.assert_allclose(np.sum(average_predictions(probabilities), axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="crops"):
        average_predictions(probabilities.reshape(30, 4))
    with pytest.raises(ValueError, match="whole number"):
        average_predictions(probabilities.reshape(30, 4), crops=7)
