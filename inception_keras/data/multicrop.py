"""Multi-crop evaluation: 1, 10, 12 or 144 crops per image, their softmax averaged.

`multi_crop(image_bytes, image_size, crops)` turns one encoded image into a
float32 `[crops, S, S, 3]` batch in [-1, 1] (TensorFlow ops, usable in `tf.data.Dataset.map`);
`average_predictions` turns the model's probabilities over those crops back into one row per
image.

- `crops=1`: the single central crop of `preprocess_for_eval` (87.5% of each side, resized).
- `crops=10`: the shorter side resized to `S * 256/224` (aspect kept), then the S x S crops at
  the 4 corners and the centre, and their mirror images (AlexNet / torchvision `TenCrop`).
- `crops=12`: the paper's Table 4 row "Inception-v3, 12 crops: 19.47% top-1 / 4.48% top-5 error"
  (144 crops: 18.77% / 4.2%). The paper does not give the 12 crops' geometry; chosen here:
  - one scale, the shorter side resized to `S * 256/224` (as the 10 crops; AlexNet/GoogLeNet's
    first scale);
  - of it, the centre square only (GoogLeNet section 7's middle square);
  - of that square, GoogLeNet's 6 crops: the 4 corner and the centre S x S crops plus the whole
    square resized to S (GoogLeNet section 7);
  - each as is and mirrored (GoogLeNet section 7): 6 x 2 = 12, i.e. one square of the 144 crops.
- `crops=144`: GoogLeNet's protocol ("Going deeper with convolutions", section 7): the shorter
  side resized to 4 scales, 256, 288, 320 and 352 for a 224 model; of each, the left, centre and
  right squares (top, middle and bottom for portrait images); of each square the 4 corner and
  the centre S x S crops plus the whole square resized to S; and the mirror image of each:
  4 x 3 x 6 x 2 = 144.

Scales for other model sizes: the protocol's scales are ratios to the model size, so they are
`round(S * (256, 288, 320, 352) / 224)`: at S = 299 that is 342, 384, 427 and 470, the crops
covering the same share of the image as at 224. Resizing is bilinear without antialiasing, as
`preprocess_for_eval`.

Crop order (what `[crops]` indexes): scale, then square (left/top first), then position
(top-left, top-right, bottom-left, bottom-right, centre, whole square), then mirror (as is,
flipped left-right); the 10 crops are the 5 positions, each as is then flipped; the 12 crops the
6 positions of the centre square, each as is then flipped.

Memory: 144 crops of 299 x 299 are 154 MB of float32 per image, so batch the crops, not the
images (`dataset.map(...).unbatch().batch(144)` is one image per batch).
"""

import tensorflow as tf

from inception_keras.data.preprocessing import decode_rgb, preprocess_for_eval, scale_to_unit_range

EVAL_CROPS = (1, 10, 12, 144)
REFERENCE_SIZE = 224  # the model size the protocols' scales are given for
TEN_CROP_SCALE = 256
MULTI_CROP_SCALES = (256, 288, 320, 352)


def crop_scales(image_size, crops):
    """The shorter-side sizes the image is resized to, for `crops` of 10, 12 or 144."""
    check_crops(crops)
    scales = (TEN_CROP_SCALE,) if crops in (10, 12) else MULTI_CROP_SCALES if crops == 144 \
        else ()
    return tuple(int(round(image_size * scale / REFERENCE_SIZE)) for scale in scales)


def check_crops(crops):
    if isinstance(crops, bool) or crops not in EVAL_CROPS:
        raise ValueError(f"eval_crops must be one of {EVAL_CROPS}; received {crops!r}.")


def multi_crop(image_bytes, image_size, crops):
    """Encoded image bytes (scalar tf.string) -> float32 [crops, S, S, 3] in [-1, 1]."""
    check_crops(crops)
    if crops == 1:
        return preprocess_for_eval(image_bytes, image_size)[tf.newaxis]
    image = tf.cast(decode_rgb(image_bytes), tf.float32)
    if crops == 10:
        (scale,) = crop_scales(image_size, crops)
        resized = resize_shorter_side(image, scale)
        views = _five_crops(resized, image_size)
    elif crops == 12:
        (scale,) = crop_scales(image_size, crops)
        centre = _three_squares(resize_shorter_side(image, scale), scale)[1]
        views = _six_crops(centre, image_size)
    else:
        views = []
        for scale in crop_scales(image_size, crops):
            resized = resize_shorter_side(image, scale)
            for square in _three_squares(resized, scale):
                views += _six_crops(square, image_size)
    with_mirrors = [view for crop in views for view in (crop, tf.reverse(crop, axis=[1]))]
    batch = scale_to_unit_range(tf.stack(with_mirrors))
    batch.set_shape([crops, image_size, image_size, 3])
    return batch


def resize_shorter_side(image, size):
    """Bilinear resize of a float [H, W, C] image so its shorter side is `size`, aspect kept
    (the longer side rounded to the nearest pixel)."""
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    shorter = tf.minimum(height, width)
    new_height = tf.cast(tf.round(height * size / shorter), tf.int32)
    new_width = tf.cast(tf.round(width * size / shorter), tf.int32)
    return tf.image.resize(image, tf.stack([new_height, new_width]), method="bilinear")


def _crop(image, y, x, size):
    return tf.slice(image, tf.stack([y, x, 0]), [size, size, -1])


def _three_squares(image, side):
    """The first, middle and last `side` x `side` squares along the longer axis."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    extra = tf.maximum(height, width) - side
    squares = []
    for offset in (0, extra // 2, extra):
        y = tf.where(height > width, offset, 0)
        x = tf.where(height > width, 0, offset)
        squares.append(_crop(image, y, x, side))
    return squares


def _five_crops(image, size):
    """The top-left, top-right, bottom-left, bottom-right and centre `size` crops."""
    shape = tf.shape(image)
    bottom, right = shape[0] - size, shape[1] - size
    positions = ((0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2))
    return [_crop(image, y, x, size) for y, x in positions]


def _six_crops(square, size):
    """GoogLeNet's crops of one square: the 5 crops, then the whole square resized to `size`."""
    whole = tf.image.resize(square, [size, size], method="bilinear")
    return [*_five_crops(square, size), whole]


def average_predictions(predictions, crops=None, *, from_logits=False):
    """Per-image mean of the crops' class probabilities.

    Args:
        predictions: `[N, crops, C]`, or `[N * crops, C]` with each image's crops consecutive
            (as `multi_crop` batches come out of the model); softmax probabilities, or logits
            with `from_logits=True` (softmax is applied per crop before averaging).
        crops: crops per image; needed for the 2-D form.

    Returns:
        float32 `[N, C]`.
    """
    predictions = tf.convert_to_tensor(predictions)
    if predictions.shape.rank == 2:
        if crops is None:
            raise ValueError("average_predictions of [N * crops, C] predictions needs `crops`.")
        rows = predictions.shape[0]
        if rows is not None and rows % crops:
            raise ValueError(
                f"average_predictions: {rows} rows are not a whole number of images of "
                f"{crops} crops."
            )
        predictions = tf.reshape(predictions, [-1, crops, tf.shape(predictions)[-1]])
    elif predictions.shape.rank != 3:
        raise ValueError(
            "average_predictions expects [N, crops, C] or [N * crops, C] predictions; received "
            f"shape {predictions.shape}."
        )
    elif crops is not None and predictions.shape[1] not in (None, crops):
        raise ValueError(f"predictions have {predictions.shape[1]} crops per image, not {crops}.")
    predictions = tf.cast(predictions, tf.float32)
    if from_logits:
        predictions = tf.nn.softmax(predictions, axis=-1)
    return tf.reduce_mean(predictions, axis=1)
