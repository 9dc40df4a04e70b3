"""Per-class accuracy, the confusion picture and the log lines, on hand-made matrices."""

import numpy as np
import pytest
import tensorflow as tf

from inception_keras.training.records.confusion import (
    EMPTY_ROW,
    confusion_image,
    per_class_accuracy,
    per_class_lines,
    write_confusion_png,
)

WHITE = (255, 255, 255)
DARK = (8, 48, 107)


def test_per_class_accuracy_rows_are_true_classes_and_empty_rows_are_nan():
    matrix = [[3, 1, 0],
              [0, 0, 0],
              [2, 2, 4]]
    accuracy = per_class_accuracy(matrix)
    assert accuracy[0] == pytest.approx(0.75)
    assert np.isnan(accuracy[1])
    assert accuracy[2] == pytest.approx(0.5)
    # the transposed matrix (columns as true class) gives other numbers: rows are what counts
    assert per_class_accuracy(np.transpose(matrix))[0] == pytest.approx(3 / 5)


def test_per_class_accuracy_takes_tensorflows_confusion_matrix():
    labels = tf.constant([0, 0, 1, 1, 1, 2])
    predictions = tf.constant([0, 1, 1, 1, 0, 0])
    matrix = tf.math.confusion_matrix(labels, predictions, num_classes=3)
    np.testing.assert_allclose(per_class_accuracy(matrix), [0.5, 2 / 3, 0.0])


@pytest.mark.parametrize("matrix, message", [
    (np.zeros((2, 3)), "square"),
    (np.zeros((4,)), "square"),
    (np.zeros((0, 0)), "square"),
    ([[1, -1], [0, 1]], ">= 0"),
    ([[1, np.nan], [0, 1]], "finite"),
])
def test_not_a_confusion_matrix(matrix, message):
    with pytest.raises(ValueError, match=message):
        per_class_accuracy(matrix)
    with pytest.raises(ValueError, match=message):
        confusion_image(matrix)


def cell_colour(image, classes, row, column):
    cell = image.shape[0] // classes
    return tuple(int(v) for v in image[row * cell + cell // 2, column * cell + cell // 2])


def test_ten_classes_readable_cells_row_normalised():
    matrix = np.diag(np.arange(1, 11) * 10).astype(np.int64)  # rows of different sizes
    matrix[3, 3], matrix[3, 7] = 0, 40  # class 3: all predicted as 7
    matrix[5] = 0  # class 5: no images
    image = confusion_image(matrix)
    assert image.dtype == np.uint8 and image.shape == (480, 480, 3)  # 48 px per class
    for i in (0, 1, 9):  # all right, whatever the row's size: the darkest colour
        assert cell_colour(image, 10, i, i) == DARK
        assert cell_colour(image, 10, i, (i + 1) % 10) == WHITE
    assert cell_colour(image, 10, 3, 7) == DARK and cell_colour(image, 10, 3, 3) == WHITE
    assert cell_colour(image, 10, 5, 5) == EMPTY_ROW and cell_colour(image, 10, 5, 0) == EMPTY_ROW


def test_shade_grows_with_the_fraction_and_small_confusions_show():
    matrix = np.array([[96, 4, 0], [50, 50, 0], [0, 0, 1]])
    image = confusion_image(matrix, cell=10)
    assert image.shape == (30, 30, 3)
    brightness = {(r, c): sum(cell_colour(image, 3, r, c)) for r, c in
                  [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]}
    assert brightness[(0, 0)] < brightness[(1, 0)] == brightness[(1, 1)] < brightness[(0, 1)]
    assert brightness[(0, 1)] < brightness[(0, 2)] == 3 * 255
    # 4% is clearly visible: a fifth of the way to the darkest colour (sqrt(0.04) = 0.2)
    assert 3 * 255 - brightness[(0, 1)] == pytest.approx(0.2 * (3 * 255 - sum(DARK)), abs=3)


def test_grid_lines_only_between_large_cells():
    matrix = np.eye(4, dtype=np.int64)
    big = confusion_image(matrix, cell=20)
    assert tuple(big[19, 5]) != tuple(big[18, 5])  # the separator at the cell's last pixel
    small = confusion_image(matrix, cell=4)
    assert small.shape == (16, 16, 3)
    assert tuple(small[3, 0]) == tuple(small[0, 0]) == DARK


@pytest.mark.parametrize("classes, side", [(1000, 1000), (1001, 501), (2500, 834), (3000, 1000)])
def test_many_classes_stay_within_max_size(classes, side):
    matrix = np.eye(classes, dtype=np.int64) * 3
    image = confusion_image(matrix)
    assert image.shape == (side, side, 3)  # pooled into ceil(classes / 1000) classes per pixel
    assert tuple(image[0, 0]) == DARK and tuple(image[0, -1]) == WHITE
    # pooled rows still add up: a group whose images are all right is dark on the diagonal
    assert tuple(image[side // 2, side // 2]) == DARK


def test_pooling_sums_neighbouring_classes():
    matrix = np.zeros((4, 4), dtype=np.int64)
    matrix[0, 2] = 1  # group 0 (classes 0, 1): half predicted into group 1
    matrix[1, 1] = 1
    matrix[2, 3] = 5  # group 1: all inside the group
    image = confusion_image(matrix, max_size=2)
    assert image.shape == (2, 2, 3)
    half = tuple(int(round(255 + (d - 255) * np.sqrt(0.5))) for d in DARK)
    assert tuple(image[0, 0]) == tuple(image[0, 1]) == half
    assert tuple(image[1, 1]) == DARK and tuple(image[1, 0]) == WHITE


def test_cell_is_capped_by_max_size():
    image = confusion_image(np.eye(10), cell=500, max_size=100)
    assert image.shape == (100, 100, 3)


def test_write_png_round_trips(tmp_path):
    matrix = np.array([[5, 1], [2, 2]])
    path = write_confusion_png(str(tmp_path / "nested" / "confusion.png"), matrix)
    decoded = tf.io.decode_png(tf.io.read_file(path)).numpy()
    np.testing.assert_array_equal(decoded, confusion_image(matrix))


def test_per_class_lines_as_documented():
    matrix = [[4, 0, 0],
              [2, 2, 0],
              [0, 1, 1]]
    assert per_class_lines(matrix, ["cat", "dog", "fox"], worst=2) == [
        "per-class top-1: mean 0.667 over 3 classes; worst 2:",
        "  0.500  dog (4 images): most often predicted as cat (2 images, 0.500)",
        "  0.500  fox (2 images): most often predicted as dog (1 image, 0.500)",
    ]


def test_per_class_lines_worst_first_skip_empty_and_perfect_classes():
    matrix = np.zeros((5, 5), dtype=np.int64)
    matrix[0] = [9, 1, 0, 0, 0]  # 0.9
    matrix[1] = [0, 3, 0, 0, 0]  # 1.0, no mistakes: not listed
    matrix[2] = [1, 0, 1, 0, 8]  # 0.1, mostly predicted as class 4
    # class 3: no images
    matrix[4] = [0, 0, 0, 2, 2]  # 0.5
    lines = per_class_lines(matrix, None, worst=10)
    assert lines[0] == "per-class top-1: mean 0.625 over 4 classes (1 without images); worst 3:"
    assert [line.split()[1] for line in lines[1:]] == ["class_2", "class_4", "class_0"]
    assert lines[1] == ("  0.100  class_2 (10 images): most often predicted as class_4 "
                        "(8 images, 0.800)")
    assert lines[3] == ("  0.900  class_0 (10 images): most often predicted as class_1 "
                        "(1 image, 0.100)")
    assert len(per_class_lines(matrix, None, worst=1)) == 2
    assert per_class_lines(matrix, None, worst=0) == [
        "per-class top-1: mean 0.625 over 4 classes (1 without images)"]


def test_per_class_lines_without_mistakes_or_images():
    assert per_class_lines(np.diag([3, 0, 2]), ["a", "b", "c"]) == [
        "per-class top-1: mean 1.000 over 2 classes (1 without images); no mistakes"]
    assert per_class_lines(np.zeros((2, 2)), ["a", "b"]) == [
        "per-class top-1: none of the 2 classes has images"]


def test_per_class_lines_checks_the_names():
    with pytest.raises(ValueError, match="2 class names for a confusion matrix of 3 classes"):
        per_class_lines(np.eye(3), ["a", "b"])
