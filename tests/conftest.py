"""Shared fixtures, and a hermetic environment for every test and every subprocess it starts.

At import, before TensorFlow or Keras is imported, HOME, XDG_CACHE_HOME, KERAS_HOME,
TFDS_DATA_DIR and INCEPTION_KERAS_CACHE point into one temporary folder for the session (removed
when the session ends, or by a later session if this one was killed). Subprocesses (CLI tests)
inherit them, so no test reads or writes the user's ~/.keras, ~/.cache/inception_keras or
~/tensorflow_datasets. Fixtures for every test file: `smoke_dataset` (the product's smoke set,
built once per session), `tiny_two_head_model` (a small model shaped like the trainer's),
`encoded_image`, `write_image_folder` and `write_shards`.
"""

import glob
import os
import subprocess
import sys
import shutil
import tempfile
import time

_PREFIX = "inception_keras_tests_"


def _remove_dirs_of_dead_sessions():
    """Session folders of test runs that were killed before they could remove their own."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{_PREFIX}*-*")):
        pid = os.path.basename(path)[len(_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(path, ignore_errors=True)


if os.path.isdir("/proc/self"):
    _remove_dirs_of_dead_sessions()
SESSION_DIR = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
SESSION_ENV = {
    "HOME": os.path.join(SESSION_DIR, "home"),
    "XDG_CACHE_HOME": os.path.join(SESSION_DIR, "home", ".cache"),
    "KERAS_HOME": os.path.join(SESSION_DIR, "keras"),
    "TFDS_DATA_DIR": os.path.join(SESSION_DIR, "tensorflow_datasets"),
    "INCEPTION_KERAS_CACHE": os.path.join(SESSION_DIR, "inception_keras_cache"),
}
for _name, _path in SESSION_ENV.items():
    os.makedirs(_path, exist_ok=True)
    os.environ[_name] = _path
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the environment above)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


# Files of minutes of subprocess training, longest first: they are collected (so started) before
# every other file, because `--dist loadfile --no-loadscope-reorder` (pyproject.toml) hands whole
# files to the two xdist workers in collection order; started last, one of them would run alone
# at the end of the session.
LONGEST_FILES_FIRST = (
    "test_trainer_mirrored.py",
    "test_trainer_main_job.py",
    "test_trainer_multi_worker.py",
    "test_recipe_matrix.py",
    "test_export_formats.py",
    "test_finetune_recipe.py",
    "test_trainer_eval_only.py",
    "test_trainer_preemption.py",
    "test_trainer_recovery.py",
    "test_export_formats_full_size.py",
    "test_trainer_watch_and_best.py",
    "test_train_step_mirrored.py",
    "test_trainer_gfile.py",
    "test_data_tfds_prepare.py",
    "test_model.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FILES_FIRST.index(name) if name in LONGEST_FILES_FIRST else \
            len(LONGEST_FILES_FIRST)

    items.sort(key=rank)  # stable: the order inside each file and among the others is kept


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def smoke_dataset():
    """The product's smoke dataset, built once per session in the session's cache; its folder.

    CLI tests that run the smoke recipe find it there through the inherited
    INCEPTION_KERAS_CACHE instead of each building it.
    """
    from inception_keras.data import ensure_smoke_dataset

    return ensure_smoke_dataset()


def two_head_classifier(classes=3, size=32, seed=0, batch_norm=True, logits=False):
    """A tiny classifier shaped like `build_inception_v3`'s model: an image input and the outputs
    `predictions` and `aux_predictions` (softmax, or logits with `logits=True` as the trainer's
    step takes them), with a conv, a BatchNorm (unless `batch_norm=False`; the conv has a bias
    only then) and a pooling layer."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    activation = None if logits else "softmax"
    image = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(4, 3, use_bias=not batch_norm, name="conv")(image)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(image, {
        "predictions": keras.layers.Dense(classes, activation, name="predictions")(x),
        "aux_predictions": keras.layers.Dense(classes, activation, name="aux_predictions")(x),
    })


@pytest.fixture(scope="session")
def tiny_two_head_model():
    """tiny_two_head_model(classes=3, size=32, seed=0, batch_norm=True, logits=False) -> a new
    small two-output keras.Model (fast to build, train and export; `seed=None` leaves the global
    random seed alone)."""
    return two_head_classifier


def _encode(image, image_format):
    if image_format == "png":
        return tf.io.encode_png(image).numpy()
    return tf.io.encode_jpeg(image, quality=95).numpy()


@pytest.fixture
def encoded_image():
    """encoded_image(height, width, value=None, channels=3, image_format='jpeg') -> bytes."""

    def make(height, width, value=None, channels=3, image_format="jpeg"):
        rng = np.random.default_rng(height * 1000 + width)
        pixels = (
            rng.integers(0, 256, (height, width, channels))
            if value is None
            else np.full((height, width, channels), value)
        )
        return _encode(pixels.astype(np.uint8), image_format)

    return make


@pytest.fixture
def write_image_folder():
    """write_image_folder(root, class_names, train_per_class, validation_per_class) writes the
    split layout `root/{train,validation}/<class>/<i>.jpg` (48x64 noise, one colour channel full
    per class) and returns root."""

    def write(root, class_names, train_per_class, validation_per_class):
        rng = np.random.default_rng(0)
        for split, count in (("train", train_per_class), ("validation", validation_per_class)):
            for label, name in enumerate(class_names):
                folder = root / split / name
                folder.mkdir(parents=True)
                for i in range(count):
                    pixels = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
                    pixels[..., label % 3] = 255  # a colour per class
                    (folder / f"{i}.jpg").write_bytes(_encode(pixels, "jpeg"))
        return root

    return write


@pytest.fixture
def write_shards(tmp_path):
    """write_shards(split, records_per_shard) writes `<tmp>/<split>-0000i-of-0000n` and returns the dir.

    Each shard is a list of serialized records (bytes).
    """
    directory = tmp_path / "shards"
    directory.mkdir(exist_ok=True)

    def write(split, records_per_shard):
        for index, records in enumerate(records_per_shard):
            path = directory / f"{split}-{index:05d}-of-{len(records_per_shard):05d}"
            with tf.io.TFRecordWriter(str(path)) as writer:
                for record in records:
                    writer.write(record)
        return str(directory)

    return write


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli_env(**extra):
    """A CLI subprocess's environment: this session's hermetic one, the repository's packages
    importable from any working directory (as the installed package is), no TF_CONFIG."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_module(module, *args, timeout=300, cwd=None, env=None):
    """`python -m module args...` in a subprocess (inherits this session's hermetic env), from
    `cwd` (default: this process's)."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env or cli_env(TF_CPP_MIN_LOG_LEVEL="3"))


def run_trainer(cwd, *args, timeout=600, env=None):
    """`python -m trainers.imagenet args...` from the working directory `cwd`, as the README
    runs it (relative paths mean `cwd`): (exit status, stdout + stderr)."""
    result = run_module("trainers.imagenet", *args, timeout=timeout, cwd=cwd, env=env)
    return result.returncode, result.stdout + result.stderr


def start_trainer(cwd, args, log_path, env=None):
    """The trainer started in the background from `cwd`, its output going to `log_path`."""
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "trainers.imagenet", *args], cwd=cwd,
                               env=env or cli_env(), stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child holds its own descriptor
    return process


def signal_when(process, log_path, text, sig, timeout=400):
    """Sends `sig` to `process` once `text` appears in its log (or `text(log)` is true, for a
    callable); returns (exit status, log)."""
    seen = text if callable(text) else (lambda log: text in log)
    deadline = time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        if seen(log_path.read_text()):
            process.send_signal(sig)
            break
        time.sleep(0.05)
    code = process.wait(timeout=300)
    return code, log_path.read_text()
