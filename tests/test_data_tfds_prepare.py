"""TFDS preparation for real, offline: `tfds:imagenet2012` built from tiny manual-download archives.

The archives have the layout of ImageNet's own: ILSVRC2012_img_train.tar holds one tar per synset
(`n01440764.tar` with `n01440764_<k>.JPEG` files), ILSVRC2012_img_val.tar holds
`ILSVRC2012_val_<n>.JPEG` files. TFDS labels the validation images itself: the i-th file name in
sorted order gets the i-th synset of its bundled validation_labels.txt, so the test uses the
first validation files and trains on exactly their synsets.
"""

import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from inception_keras import imagenet_class_names
from inception_keras.data import DataError, dataset_info, tfds_dataset
from inception_keras.data.tfds_source import prepare, tfds_builder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_VALIDATION = 4
PER_SYNSET = 3
TRAIN_TAR, VAL_TAR = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"


def tfds_validation_synsets():
    """TFDS's bundled labels of the 50,000 validation images, in file-name order."""
    return tfds.core.tfds_path("datasets/imagenet2012/validation_labels.txt").read_text().split()


def jpeg(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels, quality=90).numpy()


def add_file(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_manual_download(data_dir):
    """Tiny ImageNet archives in `<data_dir>/downloads/manual/`; returns the expected labels:
    ({train file name: synset}, {validation file name: synset})."""
    manual = os.path.join(data_dir, "downloads", "manual")
    os.makedirs(manual)
    validation = {
        f"ILSVRC2012_val_{n:08d}.JPEG": synset
        for n, synset in enumerate(tfds_validation_synsets()[:NUM_VALIDATION], start=1)
    }
    train = {}
    with tarfile.open(os.path.join(manual, TRAIN_TAR), "w") as archive:
        for synset in sorted(set(validation.values())):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as synset_tar:
                for k in range(1, PER_SYNSET + 1):
                    name = f"{synset}_{k}.JPEG"
                    add_file(synset_tar, name, jpeg(len(train)))
                    train[name] = synset
            add_file(archive, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(manual, VAL_TAR), "w") as archive:
        for index, name in enumerate(validation):
            add_file(archive, name, jpeg(1000 + index))
    return train, validation


def label_of(synset):
    return [s for s, _ in imagenet_class_names()].index(synset)


def test_imagenet2012_is_prepared_from_its_manual_download(tmp_path):
    data_dir = str(tmp_path / "tfds")
    train, validation = write_manual_download(data_dir)
    assert len(set(validation.values())) > 1  # the labels below are not all the same

    info = dataset_info("tfds:imagenet2012", data_dir)  # prepares it: the trainer's first call
    assert (info.num_train_examples, info.num_eval_examples) == (len(train), NUM_VALIDATION)
    assert info.num_classes == 1000 and info.class_names[0] == "tench, Tinca tinca"

    builder = tfds_builder("imagenet2012", data_dir)
    assert builder.is_prepared()
    for split, expected in (("train", train), ("validation", validation)):
        records = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        labels = {r["file_name"].numpy().decode(): int(r["label"]) for r in records}
        assert labels == {name: label_of(synset) for name, synset in expected.items()}

    examples = list(tfds_dataset("imagenet2012", "validation", data_dir=data_dir, image_size=32,
                                 is_training=False))
    assert len(examples) == NUM_VALIDATION
    assert all(image.shape == (32, 32, 3) and label.shape == () for image, label in examples)
    assert sorted(int(label) for _, label in examples) == sorted(
        label_of(synset) for synset in validation.values()
    )


def test_preparing_a_prepared_dataset_reads_no_archive(tmp_path):
    data_dir = str(tmp_path / "tfds")
    write_manual_download(data_dir)
    builder = tfds_builder("imagenet2012", data_dir)
    prepare(builder, data_dir)
    for name in (TRAIN_TAR, VAL_TAR):
        os.remove(os.path.join(data_dir, "downloads", "manual", name))
    prepare(tfds_builder("imagenet2012", data_dir), data_dir)
    assert dataset_info("tfds:imagenet2012", data_dir).num_eval_examples == NUM_VALIDATION


@pytest.mark.parametrize("present", [[], ["notes.txt"], [TRAIN_TAR], [VAL_TAR]])
def test_a_missing_manual_download_says_which_file_goes_where(tmp_path, present):
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    for name in present:
        (manual / name).write_bytes(b"x")
    with pytest.raises(DataError) as error:
        dataset_info("tfds:imagenet2012", str(tmp_path))
    message = str(error.value)
    assert "\n" not in message
    assert f"put {TRAIN_TAR} and {VAL_TAR} (from https://image-net.org/download-images) in {manual}/" in (
        message
    )
    missing = [name for name in (TRAIN_TAR, VAL_TAR) if name not in present]
    assert message.endswith(f"(missing: {', '.join(missing)})")
    assert not tfds_builder("imagenet2012", str(tmp_path)).is_prepared()  # no partial dataset


def test_a_broken_archive_is_a_one_line_error_from_tfds(tmp_path):
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    for name in (TRAIN_TAR, VAL_TAR):
        (manual / name).write_bytes(b"not a tar archive" * 64)
    with pytest.raises(DataError) as error:
        dataset_info("tfds:imagenet2012", str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"could not prepare TFDS dataset 'imagenet2012' in data_dir='{tmp_path}': ")
    assert "\n" not in message


def test_another_manual_dataset_gets_tfds_instructions_in_one_line(tmp_path):
    builder = tfds_builder("imagenet_lt", str(tmp_path))
    with pytest.raises(DataError) as error:
        prepare(builder, str(tmp_path))
    message = str(error.value)
    assert message.startswith(
        f"TFDS dataset 'imagenet_lt' needs a manual download in {tmp_path}/downloads/manual/: "
    )
    assert " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split()) in message and "\n" not in message


@pytest.mark.slow
def test_trainer_prepares_trains_evaluates_and_exports_imagenet2012(tmp_path):
    """The fresh-machine path of `--dataset tfds:imagenet2012`: archives in, SavedModel out."""
    data_dir = tmp_path / "tfds"
    write_manual_download(str(data_dir))
    result = subprocess.run(
        [sys.executable, "-m", "trainers.imagenet", "--config", "smoke",
         "--dataset", "tfds:imagenet2012", "--data_dir", str(data_dir),
         "--model_dir", str(tmp_path / "run"), "--export_dir", str(tmp_path / "exports"),
         "--epochs", "1", "--steps_per_epoch", "2", "--batch_size", "4",
         "--set", "image_size=75", "--set", "depth_multiplier=0.125",
         "--set", "image_summaries=false"],
        cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert any(line.startswith("final evaluation") for line in result.stdout.splitlines()), (
        result.stdout[-2000:]
    )
    assert tfds_builder("imagenet2012", str(data_dir)).is_prepared()
    export = tmp_path / "exports" / "inception_v3" / "1"
    assert (export / "saved_model.pb").is_file()
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    names = serve(image_bytes=tf.constant([jpeg(0)]))["class_names"].numpy()[0]
    assert {name.decode() for name in names} <= {name for _, name in imagenet_class_names()}
