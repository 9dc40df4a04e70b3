"""Training input throughput of `inception_keras.data` against two references, in one process.

Writes a few thousand realistic JPEGs (smooth random scenes, 300-450 px a side) once, both as
ImageNet-format TFRecord shards and as files in class folders, then measures images/s of
  ours:    make_input_fn("imagenet_tfrecord", ..., is_training=True) (crop-decode, resize, flip)
  (a)      plain `tf.io.decode_jpeg` of the same records: the decode limit
  (b)      `keras.utils.image_dataset_from_directory` on the same images at the same output size
Each round measures the pipelines in the order A-B-C-C-B-A; the ratios are the medians of the
per-round ratios, so load from other processes hits both sides of a ratio alike. The last line
is `RESULT vs_keras_folder=<x> vs_decode_limit=<y> images_per_s=<n>` (ours: its median rate).

Usage: python benchmarks/input_pipeline.py [--num-images 2000] [--image-size 299] [--rounds 5]
"""

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from inception_keras.data import make_input_fn, serialize_example

NUM_CLASSES = 10
NUM_SHARDS = 8


def realistic_image(rng):
    """A smooth random scene with detail at several scales (compresses like a photo)."""
    height, width = int(rng.integers(300, 401)), int(rng.integers(350, 451))
    image = np.zeros((height, width, 3), np.float32)
    for cells, amplitude in ((4, 90.0), (16, 45.0), (64, 20.0)):
        field = rng.normal(0.0, amplitude, (cells, cells * width // height + 1, 3)).astype(np.float32)
        image += tf.image.resize(field, [height, width], method="bicubic").numpy()
    image += rng.normal(0.0, 4.0, image.shape)
    return np.clip(image + 128.0, 0, 255).astype(np.uint8)


def write_data(directory, num_images):
    """TFRecord shards in `directory/shards`, the same JPEGs in `directory/folders/<class>/`."""
    shards, folders = os.path.join(directory, "shards"), os.path.join(directory, "folders")
    marker = os.path.join(directory, f"complete-{num_images}")
    if os.path.exists(marker):
        return shards, folders
    shutil.rmtree(directory, ignore_errors=True)  # leftovers of another --num-images
    os.makedirs(shards)
    rng = np.random.default_rng(0)
    writers = [
        tf.io.TFRecordWriter(os.path.join(shards, f"train-{i:05d}-of-{NUM_SHARDS:05d}"))
        for i in range(NUM_SHARDS)
    ]
    for index in range(num_images):
        image, label = realistic_image(rng), index % NUM_CLASSES
        encoded = tf.io.encode_jpeg(image, quality=90).numpy()
        writers[index % NUM_SHARDS].write(
            serialize_example(encoded, label + 1, height=image.shape[0], width=image.shape[1])
        )
        class_dir = os.path.join(folders, f"class_{label}")
        os.makedirs(class_dir, exist_ok=True)
        with open(os.path.join(class_dir, f"{index:05d}.jpg"), "wb") as file:
            file.write(encoded)
    for writer in writers:
        writer.close()
    open(marker, "w").close()
    return shards, folders


def ours(shards, image_size, batch_size):
    return make_input_fn(
        "imagenet_tfrecord",
        data_dir=shards,
        split="train",
        image_size=image_size,
        global_batch_size=batch_size,
        is_training=True,
        num_classes=NUM_CLASSES,
    )(None)


def decode_limit(shards, batch_size):
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}

    def decode(record):
        return tf.io.decode_jpeg(
            tf.io.parse_single_example(record, features)["image/encoded"], channels=3
        )

    files = sorted(tf.io.gfile.glob(os.path.join(shards, "train-*")))
    records = tf.data.TFRecordDataset(files, num_parallel_reads=len(files))
    images = records.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    # Images differ in size: batch their shapes, which cannot be known without the full decode.
    return images.map(tf.shape).batch(batch_size).prefetch(tf.data.AUTOTUNE).repeat()


def keras_folder(folders, image_size, batch_size):
    dataset = keras.utils.image_dataset_from_directory(
        folders,
        label_mode="int",  # class ids, as ours
        image_size=(image_size, image_size),
        batch_size=batch_size,
        verbose=False,
    )
    return dataset.repeat()


def seconds_for(dataset, batches, warmup=5):
    """Wall time of `batches` batches, after `warmup` batches that fill buffers and autotune."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=299)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20, help="measured batches per pipeline run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--cache-dir", default=os.path.join(tempfile.gettempdir(), "inception_keras_input_benchmark")
    )
    args = parser.parse_args()

    start = time.perf_counter()
    shards, folders = write_data(args.cache_dir, args.num_images)
    print(f"data: {args.num_images} JPEGs in {args.cache_dir} ({time.perf_counter() - start:.0f} s)")
    pipelines = {
        "ours": lambda: ours(shards, args.image_size, args.batch_size),
        "decode_limit": lambda: decode_limit(shards, args.batch_size),
        "keras_folder": lambda: keras_folder(folders, args.image_size, args.batch_size),
    }
    ratios = {"vs_keras_folder": [], "vs_decode_limit": []}
    rates = []
    order = list(pipelines)
    for round_index in range(args.rounds):
        # A-B-C-C-B-A: a load change during the round affects every pipeline about equally.
        seconds = dict.fromkeys(order, 0.0)
        for name in order + order[::-1]:
            seconds[name] += seconds_for(pipelines[name](), args.batches)
        images = 2 * args.batches * args.batch_size
        rate = {name: images / seconds[name] for name in order}
        print(
            f"round {round_index + 1}: "
            + ", ".join(f"{name} {rate[name]:.0f} images/s" for name in order)
        )
        rates.append(rate["ours"])
        ratios["vs_keras_folder"].append(rate["ours"] / rate["keras_folder"])
        ratios["vs_decode_limit"].append(rate["ours"] / rate["decode_limit"])
    print(
        f"RESULT vs_keras_folder={np.median(ratios['vs_keras_folder']):.2f} "
        f"vs_decode_limit={np.median(ratios['vs_decode_limit']):.2f} images_per_s={np.median(rates):.0f}"
    )


if __name__ == "__main__":
    main()
