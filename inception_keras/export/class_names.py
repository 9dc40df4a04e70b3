"""Class names baked into the `serving_default` signature."""

import tensorflow as tf

from inception_keras.data.errors import DataError
from inception_keras.data.folder import folder_class_names
from inception_keras.export.errors import ExportError
from inception_keras.imagenet_classes import IMAGENET_NUM_CLASSES, imagenet_label_names


def resolve_class_names(class_names, num_classes):
    """`class_names` checked against the model, or the default names for `num_classes`.

    The default is the ImageNet names for a 1000-class model, else `class_0, class_1, ...`;
    a model trained on an image folder must be given that folder's names.
    """
    if class_names is None:
        if num_classes == IMAGENET_NUM_CLASSES:
            return imagenet_label_names()
        return tuple(f"class_{index}" for index in range(num_classes))
    if isinstance(class_names, (str, bytes)) or not all(isinstance(n, str) for n in class_names):
        raise ExportError(
            "class_names must be a sequence of strings, one per class; received "
            f"{type(class_names).__name__}."
        )
    class_names = tuple(class_names)
    if len(class_names) != num_classes:
        raise ExportError(
            f"class_names has {len(class_names)} names but the model has {num_classes} classes; "
            "pass one name per class, in label order."
        )
    return class_names


def read_class_names(path):
    """Class names from a text file (one per line) or the training image folder, local or on
    any tf.io.gfile filesystem.

    A folder's names are those the data layer trains with (`folder_class_names`: the sorted
    class subfolders of `path`, or of `path/train` in the split layout).
    """
    if tf.io.gfile.isdir(path):
        try:
            return list(folder_class_names(path))
        except DataError as error:
            raise ExportError(f"class names: {error}") from None
    if not tf.io.gfile.exists(path):
        raise ExportError(f"class names: {path} is neither a text file nor an image folder.")
    with tf.io.gfile.GFile(path) as file:
        names = [line.strip() for line in file.read().splitlines() if line.strip()]
    if not names:
        raise ExportError(f"class names: {path} holds no class names.")
    return names
