"""Image folders for fine-tuning on a user's own data.

Layout: `root/<class_name>/*.{jpg,jpeg,png}`, classes are the sorted sub-folder names. With
`root/train/<class_name>/...` and `root/validation/<class_name>/...` the splits are those
folders (classes from `train/`); otherwise every 10th image of each class (in sorted order) is
held out for validation.
"""

import os

import tensorflow as tf

from inception_keras.data.errors import DataError
from inception_keras.data.examples import to_examples
from inception_keras.data.sharding import pipeline_seed, shard_items
from inception_keras.data.tfrecord import check_split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
HOLDOUT_EVERY = 10
LAYOUT = (
    "<root>/<class_name>/*.jpg|*.jpeg|*.png, or <root>/train/<class_name>/... with "
    "<root>/validation/<class_name>/..."
)


def _subdirs(path):
    return sorted(
        name.rstrip("/") for name in tf.io.gfile.listdir(path) if tf.io.gfile.isdir(_join(path, name))
    )


def _join(*parts):
    return "/".join(part.rstrip("/") for part in parts)


def _images(class_dir):
    names = tf.io.gfile.listdir(class_dir)
    return sorted(
        _join(class_dir, name) for name in names if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
    )


def _images_if_any(class_dir):
    return _images(class_dir) if tf.io.gfile.isdir(class_dir) else []


def _has_split_folders(root):
    return tf.io.gfile.isdir(_join(root, "train"))


def folder_class_names(root):
    """Sorted class folder names (of `root/train` in the split layout)."""
    if not root or not tf.io.gfile.isdir(root):
        raise DataError(f"image folder {root!r} does not exist or is not a directory; expected {LAYOUT}")
    class_root = _join(root, "train") if _has_split_folders(root) else root
    names = tuple(_subdirs(class_root))
    if not names:
        raise DataError(f"image folder {class_root!r} has no class sub-folders; expected {LAYOUT}")
    return names


def folder_files(root, split):
    """(sorted image paths, 0-based labels) of a split; DataError when it has no images."""
    check_split(split)
    class_names = folder_class_names(root)
    if _has_split_folders(root):
        split_root = _join(root, split)
        if not tf.io.gfile.isdir(split_root):
            raise DataError(
                f"image folder {root!r} has train/ but no {split}/ folder; expected {LAYOUT}"
            )
        unknown = sorted(set(_subdirs(split_root)) - set(class_names))
        if unknown:
            raise DataError(
                f"{split_root!r} has class folders not in train/: {unknown}; expected {LAYOUT}"
            )
        per_class = [_images_if_any(_join(split_root, name)) for name in class_names]
    else:
        split_root = root
        per_class = [_held_out(_images(_join(root, name)), split) for name in class_names]
    paths = [path for images in per_class for path in images]
    labels = [label for label, images in enumerate(per_class) for _ in images]
    if not paths:
        raise DataError(f"image folder {split_root!r} has no {split} images; expected {LAYOUT}")
    return paths, labels


def _held_out(images, split):
    want_validation = split == "validation"
    return [
        path
        for index, path in enumerate(images)
        if (index % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) == want_validation
    ]


def _read(record):
    path, label = record
    return tf.io.read_file(path), label


def folder_dataset(
    root,
    split,
    *,
    image_size,
    is_training,
    num_classes=None,
    input_context=None,
    seed=None,
    deterministic=False,
    color_distortion=False,
):
    """Unbatched (image, one-hot label) examples of this input pipeline's share of the images."""
    paths, labels = folder_files(root, split)
    pairs = shard_items(list(zip(paths, labels, strict=True)), input_context, f"image folder {root}")
    seed = pipeline_seed(seed, input_context)
    records = tf.data.Dataset.from_tensor_slices(([p for p, _ in pairs], [lbl for _, lbl in pairs]))
    if is_training:
        records = records.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    return to_examples(
        records,
        _read,
        image_size=image_size,
        is_training=is_training,
        num_classes=num_classes or len(folder_class_names(root)),
        seed=seed,
        deterministic=deterministic,
        color_distortion=color_distortion,
        shuffle=False,
    )
