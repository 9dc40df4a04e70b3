"""Does starting from a trained run help on a new task with few images? Fine-tune vs scratch.

The smoke set's 10 classes are split in two: the even labels (red circle, yellow triangle,
spring cross, azure horizontal stripes, magenta checkerboard) are the pretraining task, with all
their training images; the odd labels (orange square, green ring, cyan diamond, violet vertical
stripes, rose dots) are the new task, with only `--shots` (30) training images per class. Both
are written out as image folders (`train/<class>/*.jpg`, `validation/<class>/*.jpg`, the
layout `folder:PATH` reads) from the smoke set's TFRecords. Then, each through the trainer's
CLI (`python -m trainers.imagenet --config smoke --dataset folder:...`):

1. pretrain: the smoke recipe on the first task (`--pretrain_epochs` epochs);
2. finetune: the smoke recipe on the new task for `--steps` steps, from the first run
   (`--set init_weights=<its model_dir>`: every layer but the classifier, which has as many
   classes and is loaded too, then retrained);
3. scratch: the same command, seed and steps without `init_weights`.

Both new-task runs are scored by the trainer's final evaluation on the new task's held-out
images (50 per class, `eval.json`). Interleaving the tasks' classes gives both tasks the whole
range of hues, so what transfers is the network's shape and texture features, not a colour.
About 5 minutes on 2 otherwise idle CPU cores (7-8 under load): seconds of trainer start-up,
tracing, evaluation and export per run, then about 0.5 s per step.

    python benchmarks/transfer.py [--shots 30] [--steps 30] [--pretrain_epochs 3] [--seed 0]

Last line: RESULT finetune_top1=<x> scratch_top1=<y> gain=<x-y> (the issue's target: gain >= 0.10).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tensorflow as tf  # noqa: E402

from inception_keras.data import SMOKE_CLASS_NAMES, ensure_smoke_dataset  # noqa: E402
from inception_keras.data.tfrecord import parse_record, shard_files  # noqa: E402

PRETRAIN_LABELS = tuple(range(0, len(SMOKE_CLASS_NAMES), 2))
NEW_LABELS = tuple(range(1, len(SMOKE_CLASS_NAMES), 2))
# The run, smaller than the smoke recipe's to stay within minutes: one final evaluation only.
QUIET = ["--set", "image_summaries=false", "--set", "eval_every_epochs=0",
         "--set", "log_every_steps=10"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=int, default=30, help="new-task training images per class")
    parser.add_argument("--steps", type=int, default=30,
                        help="training steps of each new-task run (batch 32)")
    parser.add_argument("--pretrain_epochs", type=int, default=3,
                        help="epochs of the pretraining run over its 1,500 images")
    parser.add_argument("--seed", type=int, default=0, help="seed of all three runs")
    parser.add_argument("--work_dir", help="keep the folders and runs here (default: a temporary "
                                           "folder, removed at the end)")
    return parser.parse_args(argv)


def smoke_images(split):
    """{label: [encoded JPEG bytes, ...]} of the smoke set's `split`, in record order."""
    by_label = {}
    records = tf.data.TFRecordDataset(shard_files(ensure_smoke_dataset(), split))
    for image_bytes, label in records.map(parse_record):
        by_label.setdefault(int(label), []).append(image_bytes.numpy())
    return by_label


def write_folder(root, labels, train, validation, train_per_class=None):
    """`root/train/<class>/NNNN.jpg` and `root/validation/<class>/NNNN.jpg` for `labels`."""
    for split, images in (("train", train), ("validation", validation)):
        for label in labels:
            folder = os.path.join(root, split, SMOKE_CLASS_NAMES[label])
            os.makedirs(folder, exist_ok=True)
            chosen = images[label] if split == "validation" or train_per_class is None else (
                images[label][:train_per_class])
            for index, image in enumerate(chosen):
                with open(os.path.join(folder, f"{index:04d}.jpg"), "wb") as file:
                    file.write(image)
    return root


def train(name, work_dir, dataset, seed, extra):
    """One trainer run through its CLI; returns (its eval.json, its model_dir, seconds)."""
    model_dir = os.path.join(work_dir, "runs", name)
    command = [sys.executable, "-m", "trainers.imagenet", "--config", "smoke",
               "--dataset", f"folder:{dataset}", "--model_dir", model_dir,
               "--export_dir", os.path.join(work_dir, "exports", name),
               "--set", f"seed={seed}", *QUIET, *extra]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{name}: the trainer exited with status {result.returncode}")
    with open(os.path.join(model_dir, "eval.json")) as file:
        return json.load(file), model_dir, seconds


def main(argv=None):
    args = parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="transfer_benchmark_")
    started = time.perf_counter()
    try:
        train_images, validation_images = smoke_images("train"), smoke_images("validation")
        first = write_folder(os.path.join(work_dir, "pretrain_task"), PRETRAIN_LABELS,
                             train_images, validation_images)
        second = write_folder(os.path.join(work_dir, "new_task"), NEW_LABELS, train_images,
                              validation_images, train_per_class=args.shots)
        print(f"pretrain task: {', '.join(SMOKE_CLASS_NAMES[i] for i in PRETRAIN_LABELS)}: "
              f"{sum(len(train_images[i]) for i in PRETRAIN_LABELS)} training images")
        print(f"new task: {', '.join(SMOKE_CLASS_NAMES[i] for i in NEW_LABELS)}: "
              f"{args.shots} training images per class, "
              f"{sum(len(validation_images[i]) for i in NEW_LABELS)} held out", flush=True)

        pretrained, pretrain_dir, seconds = train(
            "pretrain", work_dir, first, args.seed, ["--epochs", str(args.pretrain_epochs)])
        print(f"pretrain: top1={pretrained['top1']:.3f} on {pretrained['examples']} held-out "
              f"images of its own task ({args.pretrain_epochs} epochs, {seconds:.0f} s)",
              flush=True)

        new_task = ["--epochs", "1", "--steps_per_epoch", str(args.steps)]
        tuned, _, seconds = train("finetune", work_dir, second, args.seed,
                                  new_task + ["--set", f"init_weights={pretrain_dir}"])
        print(f"finetune: top1={tuned['top1']:.3f} on {tuned['examples']} held-out images "
              f"({args.steps} steps from the pretrain run, {seconds:.0f} s)", flush=True)
        scratch, _, seconds = train("scratch", work_dir, second, args.seed, new_task)
        print(f"scratch: top1={scratch['top1']:.3f} on {scratch['examples']} held-out images "
              f"({args.steps} steps from random weights, {seconds:.0f} s)", flush=True)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(f"total: {time.perf_counter() - started:.0f} s")
    gain = tuned["top1"] - scratch["top1"]
    print(f"RESULT finetune_top1={tuned['top1']:.3f} scratch_top1={scratch['top1']:.3f} "
          f"gain={gain:.3f}")


if __name__ == "__main__":
    main()
