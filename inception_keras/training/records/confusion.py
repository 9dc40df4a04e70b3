"""Per-class accuracy and a confusion-matrix picture, from the counts of an evaluation.

    acc = per_class_accuracy(matrix)               # [C] float, NaN where a class had no images
    for line in per_class_lines(matrix, names):    # the worst classes, for the log
        print(line)
    write_confusion_png("runs/x/confusion.png", matrix)   # local path or gs://
    image = confusion_image(matrix)                # uint8 [H, W, 3], e.g. for tf.summary.image

`matrix[i, j]` counts the evaluated images of true class `i` predicted as class `j` (rows: true
class, columns: prediction), as `tf.math.confusion_matrix(labels, predictions)` builds it.

The picture is row-normalised: cell (i, j) shows the fraction of class i's images predicted as
j, white for none and dark blue for all of them, with the shade growing as the square root of
the fraction so that a few percent of confusion is visible; rows of classes without images are
grey. Up to `max_size` classes each class gets `cell` x `cell` pixels (by default as many as fit
in `max_size` pixels, at most 48); with more classes than `max_size`, neighbouring classes (in
label order) are pooled into groups so that the picture stays within `max_size` x `max_size`.
"""

import math

import numpy as np
import tensorflow as tf

DEFAULT_MAX_SIZE = 1000  # pixels per side, at most
MAX_CELL = 48  # pixels per class when few classes fit (10 classes: 480 x 480)
EMPTY_ROW = (200, 200, 200)  # a class without images: grey, not "all wrong"
GRID = (225, 225, 225)  # separators between cells of at least GRID_MIN_CELL pixels
GRID_MIN_CELL = 8
_LOW = np.array([255.0, 255.0, 255.0])  # fraction 0: white
_HIGH = np.array([8.0, 48.0, 107.0])  # fraction 1: dark blue


def _counts(matrix):
    """`matrix` as a square float64 array of finite, non-negative counts (ValueError otherwise)."""
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(
            f"a confusion matrix is square [classes, classes] with rows = true class; received "
            f"shape {tuple(counts.shape)}."
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("a confusion matrix holds counts: finite and >= 0.")
    return counts


def per_class_accuracy(matrix):
    """Top-1 accuracy of each true class: `matrix[i, i] / sum(matrix[i])`, NaN for no images.

    Args:
        matrix: `[C, C]` counts, rows = true class, columns = predicted class.

    Returns:
        A float64 array `[C]`.
    """
    counts = _counts(matrix)
    totals = counts.sum(axis=1)
    accuracy = np.full(totals.shape, np.nan)
    has_images = totals > 0
    accuracy[has_images] = np.diagonal(counts)[has_images] / totals[has_images]
    return accuracy


def _pooled(counts, groups):
    """Sums the counts of `groups` consecutive classes (rows and columns) into one."""
    size = counts.shape[0]
    padded_size = math.ceil(size / groups) * groups
    padded = np.zeros((padded_size, padded_size))
    padded[:size, :size] = counts
    blocks = padded_size // groups
    return padded.reshape(blocks, groups, blocks, groups).sum(axis=(1, 3))


def confusion_image(matrix, *, cell=None, max_size=DEFAULT_MAX_SIZE):
    """The row-normalised confusion matrix as an RGB picture.

    Args:
        matrix: `[C, C]` counts, rows = true class, columns = predicted class.
        cell: pixels per side of one class's cell; `None` picks `min(48, max_size // C)`
            (at least 1). Reduced when `C * cell` would exceed `max_size`.
        max_size: the largest side of the picture, in pixels. More classes than this are pooled
            into `ceil(C / max_size)` consecutive classes per pixel.

    Returns:
        `uint8 [H, W, 3]` with `H == W <= max(max_size, 1)`: row i, column j is true class i,
        predicted class j (class 0 top left).
    """
    counts = _counts(matrix)
    max_size = max(int(max_size), 1)
    classes = counts.shape[0]
    groups = math.ceil(classes / max_size)
    if groups > 1:
        counts = _pooled(counts, groups)
    rows = counts.shape[0]
    largest = max(max_size // rows, 1)
    cell = min(MAX_CELL, largest) if cell is None else min(max(int(cell), 1), largest)

    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    shade = np.sqrt(fractions)[..., None]
    colours = _LOW + (_HIGH - _LOW) * shade
    colours[totals[:, 0] == 0] = EMPTY_ROW
    image = np.repeat(np.repeat(np.rint(colours).astype(np.uint8), cell, axis=0), cell, axis=1)
    if cell >= GRID_MIN_CELL:
        image[cell - 1::cell, :] = GRID
        image[:, cell - 1::cell] = GRID
    return image


def write_confusion_png(path, matrix, **options):
    """Writes `confusion_image(matrix, **options)` as a PNG to `path` (local or gs://, through
    tf.io.gfile; parent folders are created). Returns `path`."""
    png = tf.io.encode_png(confusion_image(matrix, **options)).numpy()
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent and not tf.io.gfile.exists(parent):
        tf.io.gfile.makedirs(parent)
    with tf.io.gfile.GFile(path, "wb") as file:
        file.write(png)
    return path


def per_class_lines(matrix, class_names=None, worst=10):
    """Log lines: a summary, then the `worst` classes with their accuracy and the other class
    their images were most often predicted as (classes without mistakes are not listed).

    Args:
        matrix: `[C, C]` counts, rows = true class, columns = predicted class.
        class_names: `C` names in label order (`None`: `class_0`, `class_1`, ...).
        worst: how many classes to list at most, lowest accuracy first (ties: label order).
            Classes without images are not listed, only counted in the summary.

    Returns:
        A list of strings, e.g. for three classes and `worst=2`:
            `per-class top-1: mean 0.667 over 3 classes; worst 2:`
            `  0.500  dog (4 images): most often predicted as cat (2 images, 0.500)`
            `  0.500  fox (2 images): most often predicted as dog (1 image, 0.500)`
    """
    counts = _counts(matrix)
    classes = counts.shape[0]
    if class_names is None:
        class_names = [f"class_{i}" for i in range(classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != classes:
        raise ValueError(
            f"{len(class_names)} class names for a confusion matrix of {classes} classes."
        )
    accuracy = per_class_accuracy(counts)
    scored = [i for i in range(classes) if not math.isnan(accuracy[i])]
    empty = classes - len(scored)
    wrong = [i for i in scored if accuracy[i] < 1.0]
    shown = sorted(wrong, key=lambda i: (accuracy[i], i))[: max(int(worst), 0)]
    if not scored:
        return [f"per-class top-1: none of the {classes} classes has images"]
    summary = f"per-class top-1: mean {np.mean(accuracy[scored]):.3f} over {len(scored)} classes"
    if empty:
        summary += f" ({empty} without images)"
    if shown:
        summary += f"; worst {len(shown)}:"
    elif not wrong:
        summary += "; no mistakes"
    lines = [summary]
    for i in shown:
        row = counts[i]
        total = int(round(row.sum()))
        text = f"  {accuracy[i]:.3f}  {class_names[i]} ({_images(total)})"
        others = row.copy()
        others[i] = -1.0
        other = int(np.argmax(others))  # a class with mistakes has another class predicted
        mistaken = int(round(others[other]))
        lines.append(text + f": most often predicted as {class_names[other]} "
                            f"({_images(mistaken)}, {others[other] / row.sum():.3f})")
    return lines


def _images(count):
    return f"{count} image" + ("" if count == 1 else "s")
