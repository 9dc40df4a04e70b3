"""The validation images an evaluation leaves out (the config key `eval_exclude`).

The paper scores "the 48,238 non-blacklisted examples of the ILSVRC-2012 validation set"
(about 0.2% worse top-1 on all 50,000); the ILSVRC-2014 blacklist (1,762 images) is the list
the user supplies. The file holds one entry a line (blank lines and `#` comments skipped):

- a positive integer N: ImageNet's 1-based validation image number, the file
  `ILSVRC2012_val_{N:08d}.JPEG` (the blacklist's own form: `ILSVRC2014_clsloc_validation_
  blacklist.txt` lists such numbers); 0 and negative numbers are an error, being no image's;
- anything else: an image's file name, compared by base name (`cat_12.jpg`, or
  `ILSVRC2012_val_00000017.JPEG`); with a `/` in it, by the end of its path (`cat/12.jpg`
  for an image folder whose class folders reuse file names).

Positions in the input order are not accepted: ImageNet's TFRecord shards hold the images
shuffled, so a position means different images in different builds.

Which datasets have file names: `imagenet_tfrecord` (the record's `image/filename`, as
build_imagenet_data.py writes it), `tfds:NAME` with a `file_name` feature (imagenet2012 has
it), `folder:PATH` (the files' names). `smoke` and `synthetic` have none: DataError.

An entry that matches no image is a warning, not an error: the same blacklist legitimately
meets validation sets that already lack some of its images (a subset, a cleaned copy), and
every report says how many images were scored and how many were left out.
"""

import functools
import re

import tensorflow as tf

from inception_keras.data.errors import DataError

IMAGENET_VALIDATION_NAME = "ILSVRC2012_val_{:08d}.JPEG"


def read_exclusions(path):
    """The file names `path` lists (numbers turned into ImageNet's names), as a frozenset."""
    if not tf.io.gfile.exists(path):
        raise DataError(f"eval_exclude: no file {path}; give a file of validation image names "
                        "or 1-based ImageNet validation numbers, one a line")
    with tf.io.gfile.GFile(path) as file:
        lines = file.read().splitlines()
    names = set()
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry.lstrip("+-").isdigit():
            if int(entry) < 1:
                raise DataError(f"eval_exclude: {path} line {number}: {entry} is no validation "
                                "image number (they start at 1)")
            entry = IMAGENET_VALIDATION_NAME.format(int(entry))
        names.add(_slashes(entry).strip("/"))
    return frozenset(names)


def _slashes(name):
    return name.replace("\\", "/")


def matching_entry(name, exclusions):
    """The entry of `exclusions` that the file name (str, any folder part) matches, or None."""
    name = _slashes(name)
    base = name.rsplit("/", 1)[-1]
    if base in exclusions:
        return base
    for entry in _path_entries(exclusions):
        if name == entry or name.endswith("/" + entry):
            return entry
    return None


@functools.lru_cache(maxsize=4)
def _path_entries(exclusions):
    return tuple(entry for entry in exclusions if "/" in entry)


def is_excluded(name, exclusions):
    """tf.bool: whether the file name (scalar tf.string, any folder part) matches an entry."""
    pattern = "|".join(re.escape(entry) for entry in sorted(exclusions))
    name = tf.strings.regex_replace(name, r"\\", "/")
    return tf.strings.regex_full_match(name, f"(.*/)?({pattern})")


def drop_excluded(records, file_name, exclusions):
    """`records` without those whose `file_name(record)` is listed (all of them if none is)."""
    if not exclusions:
        return records
    return records.filter(lambda *record: tf.logical_not(is_excluded(file_name(*record),
                                                                     exclusions)))


def count_excluded(file_names, exclusions):
    """(how many of the names are listed, the listed names that matched none), from an
    iterable of file names (str or bytes) of every validation image."""
    found = set()
    count = 0
    for name in file_names:
        entry = matching_entry(name.decode() if isinstance(name, bytes) else name, exclusions)
        if entry is not None:
            count += 1
            found.add(entry)
    return count, sorted(exclusions - found)


def no_file_names(dataset):
    return DataError(f"eval_exclude: dataset {dataset} has no image file names to exclude by; "
                     "use it with imagenet_tfrecord, tfds:imagenet2012 or folder:PATH")
