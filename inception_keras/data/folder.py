"""Image folders for fine-tuning on a user's own data.

Layout: `root/<class_name>/*.{jpg,jpeg,png,bmp,gif,webp}`, classes are the sorted sub-folder
names. With `root/train/<class_name>/...` and `root/validation/<class_name>/...` the splits are
those folders (classes from `train/`); otherwise every 10th image of each class (in sorted order)
is held out for validation.

Every format `tf.io.decode_image` reads is used: JPEG (grayscale and CMYK too), PNG (8- and
16-bit, grayscale, palette, alpha), BMP (24/32-bit), GIF (its first frame) and WebP (where this
TensorFlow decodes it). Hidden files (`.DS_Store`, macOS `._name.jpg` resource forks) are
ignored. Files that are not used (another extension, a nested folder) or cannot be decoded are
listed by `folder_problems(root)`, for the trainer to report once per run.
"""

import collections
import os
import struct

import tensorflow as tf

from inception_keras.data.errors import DataError
from inception_keras.data.examples import ExampleOptions, to_examples
from inception_keras.data.exclusion import matching_entry
from inception_keras.data.preprocessing import decode_rgb
from inception_keras.data.sharding import shard_items
from inception_keras.data.tfrecord import check_split

# WebP is read where this TensorFlow decodes it (tf.io.decode_webp exists; TF 2.21 does).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif") + (
    (".webp",) if hasattr(tf.io, "decode_webp") else ()
)
HOLDOUT_EVERY = 10
LAYOUT = (
    f"<root>/<class_name>/*{'|*'.join(IMAGE_EXTENSIONS)}, or <root>/train/<class_name>/... "
    "with <root>/validation/<class_name>/..."
)


def _subdirs(path):
    return sorted(
        name.rstrip("/") for name in tf.io.gfile.listdir(path) if tf.io.gfile.isdir(_join(path, name))
    )


def _join(*parts):
    return "/".join(part.rstrip("/") for part in parts)


def _is_hidden(name):
    return name.startswith(".")


def _is_image_name(name):
    return not _is_hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _images(class_dir):
    names = tf.io.gfile.listdir(class_dir)
    return sorted(_join(class_dir, name) for name in names if _is_image_name(name.rstrip("/")))


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


def folder_dataset(root, split, *, input_context=None, **options):
    """Unbatched (image, class id) examples of this input pipeline's share of the images.

    `options` are `ExampleOptions`' fields (image_size and is_training at least); num_classes
    defaults to the number of class folders.
    """
    return folder_examples(root, split, ExampleOptions(**options), input_context)


def folder_examples(root, split, options, input_context=None):
    """`folder_dataset` with its options as one `ExampleOptions`."""
    paths, labels = folder_files(root, split)
    pairs = [(path, label) for path, label in zip(paths, labels, strict=True)
             if not options.exclude or matching_entry(path, options.exclude) is None]
    pairs = shard_items(pairs, input_context, f"image folder {root}")
    if not options.num_classes:  # listed only when needed: a round trip on object stores
        options = options.with_default_classes(len(folder_class_names(root)))
    options = options.for_pipeline(input_context)
    records = tf.data.Dataset.from_tensor_slices(([p for p, _ in pairs], [lbl for _, lbl in pairs]))
    if options.is_training:
        records = records.shuffle(len(pairs), seed=options.seed, reshuffle_each_iteration=True)
    return to_examples(records, _read, options, shuffle=False)


# --- Files the folder pipeline does not use, by name -------------------------------------------

FolderProblem = collections.namedtuple("FolderProblem", ["path", "reason"])
FolderProblem.__doc__ = "A file (or folder) of an image folder that is not used, and why."

UNSUPPORTED = "skipped, unsupported file type"
NESTED_FOLDER = "skipped, a folder inside a class folder (only a class folder's own files are read)"
EMPTY = "dropped, empty file"
UNREADABLE = "dropped, cannot be read"
UNDECODABLE = "dropped, not an image TensorFlow can decode"
PALETTE_BMP = (
    "read with wrong colours, 8-bit colour-palette BMP (TensorFlow decodes palette indices as "
    "grey levels); convert it to PNG"
)
_OK, _EMPTY, _UNREADABLE, _UNDECODABLE = 0, 1, 2, 3
_STATUS_REASONS = {_EMPTY: EMPTY, _UNREADABLE: UNREADABLE, _UNDECODABLE: UNDECODABLE}


def folder_problems(root, *, decode=True):
    """Files under the class folders of `root` that training and evaluation leave out, by name.

    Returns a list of `FolderProblem(path, reason)`, sorted by path: files with an extension the
    folder pipeline does not read, folders nested in a class folder, and (with `decode=True`)
    image files that are empty, unreadable or that TensorFlow cannot decode — the pipeline drops
    those as corrupt records. 8-bit colour-palette BMPs, which TensorFlow decodes with wrong
    colours, are listed too. Hidden files are ignored silently.

    Decoding is the check that counts (a `.jpg` holding HTML passes any name test), so every
    image is read and fully decoded once, with `decode_rgb` (the pipeline's decoder), in a
    parallel `tf.data` pipeline in C++: about a millisecond of CPU per typical photo, so a few
    seconds for a few thousand images on a few cores; run it once per run, not per epoch.
    `decode=False` only lists the files (no reads: for object stores holding huge folders).
    """
    class_names = folder_class_names(root)
    if _has_split_folders(root):
        class_dirs = [_join(root, "train", name) for name in class_names]
        validation = _join(root, "validation")
        if tf.io.gfile.isdir(validation):
            class_dirs += [_join(validation, name) for name in _subdirs(validation)]
    else:
        class_dirs = [_join(root, name) for name in class_names]
    problems, candidates = [], []
    for class_dir in class_dirs:
        for name in sorted(tf.io.gfile.listdir(class_dir)):
            name = name.rstrip("/")
            path = _join(class_dir, name)
            if _is_hidden(name):
                continue
            if tf.io.gfile.isdir(path):
                problems.append(FolderProblem(path, NESTED_FOLDER))
            elif not _is_image_name(name):
                extension = os.path.splitext(name)[1] or "no extension"
                problems.append(FolderProblem(path, f"{UNSUPPORTED} ({extension})"))
            else:
                candidates.append(path)
    if decode and candidates:
        for path, status in zip(candidates, _decode_status(candidates), strict=True):
            if status != _OK:
                problems.append(FolderProblem(path, _STATUS_REASONS[int(status)]))
            elif path.lower().endswith(".bmp") and _is_palette_bmp(path):
                problems.append(FolderProblem(path, PALETTE_BMP))
    return sorted(problems)


def describe_folder_problems(problems, root=None, limit=5):
    """The problems as a few lines for a log, one per reason, naming up to `limit` files each.

    Paths are shown relative to `root` when given, e.g.
    `skipped, unsupported file type (.tif) (2): cat/a.tif, dog/b.tif`.
    """
    by_reason = collections.defaultdict(list)
    for path, reason in problems:
        if root is not None and path.startswith(_join(root, "")):
            path = path[len(_join(root, "")) :]
        by_reason[reason].append(path)
    lines = []
    for reason, paths in sorted(by_reason.items()):
        more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
        shown = ", ".join(paths[:limit]) + more
        lines.append(f"{reason} ({len(paths)}): {shown}")
    return "\n".join(lines)


def _decode_status(paths):
    """One status per path (`_OK`, `_EMPTY`, `_UNREADABLE`, `_UNDECODABLE`), in order.

    Each file is checked inside its own one-element dataset with `ignore_errors()`, followed by
    the failure status and `take(1)`: the status is the check's result when it succeeded and
    the failure placeholder when it raised (no `py_function`, files decoded in parallel).
    """

    def decode(data, readable):
        def check():
            image = decode_rgb(data)
            return tf.where(tf.size(image) > 0, _OK, _UNDECODABLE)

        def nonempty():
            return tf.cond(tf.strings.length(data) > 0, check, lambda: tf.constant(_EMPTY))

        return tf.cond(readable, nonempty, lambda: tf.constant(_UNREADABLE))

    def then(dataset, failure):
        return dataset.ignore_errors().concatenate(tf.data.Dataset.from_tensors(failure)).take(1)

    def status(path):
        read = tf.data.Dataset.from_tensors(path).map(lambda p: (tf.io.read_file(p), True))
        contents = then(read, (tf.constant(""), tf.constant(False)))
        return contents.flat_map(
            lambda data, readable: then(
                tf.data.Dataset.from_tensors((data, readable)).map(decode), tf.constant(_UNDECODABLE)
            )
        )

    statuses = tf.data.Dataset.from_tensor_slices(paths).interleave(
        status, cycle_length=tf.data.AUTOTUNE, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return [int(s) for batch in statuses.batch(1024).as_numpy_iterator() for s in batch]


def _is_palette_bmp(path):
    """True for an 8-bit BMP whose palette is not the grey ramp (TF ignores BMP palettes)."""
    with tf.io.gfile.GFile(path, "rb") as f:
        header = f.read(54 + 4 * 256)
    if len(header) < 54 or header[:2] != b"BM":
        return False
    dib_size, bits = struct.unpack_from("<I", header, 14)[0], struct.unpack_from("<H", header, 28)[0]
    if bits != 8:
        return False
    colours = struct.unpack_from("<I", header, 46)[0] or 256
    palette = header[14 + dib_size : 14 + dib_size + 4 * colours]
    return any(palette[4 * i : 4 * i + 3] != bytes((i, i, i)) for i in range(len(palette) // 4))
