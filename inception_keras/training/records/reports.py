"""What a run writes for people: its start-up summary and its final evaluation.

`summary_lines(setup)` is the block a run prints first (config, strategy, precision, data,
batch, schedule, model, folders). `write_final(...)` prints an evaluation's line and the worst
classes, writes its record and confusion matrix PNG (a training run's final evaluation:
`eval.json` and `confusion_matrix.png`; any other: `evaluations/<name>.json` and `.png`) and the
`final/...` TensorBoard entries. The records' fields: README.md, "Evaluation records".
"""

import json
import os

import numpy as np
import tensorflow as tf

from inception_keras import atomic
from inception_keras.models.complexity import multiply_adds
from inception_keras.models.inception_v3 import inference_model
from inception_keras.training.records import confusion
from inception_keras.training.step.schedules import make_schedule

EVAL_FILE = "eval.json"
CONFUSION_FILE = "confusion_matrix.png"
EVALUATIONS_DIR = "evaluations"  # every other evaluation's record: <name>.json and <name>.png


def summary_lines(setup):
    config, info = setup.config, setup.info
    _, lr_text = make_schedule(config, global_batch_size=config.global_batch_size,
                               steps_per_epoch=config.steps_per_epoch,
                               num_train_examples=info.num_train_examples)
    where = f" ({setup.task_type} {setup.task_id})" if setup.task_type else ""
    ema_text = f"EMA {config.ema_momentum}" if config.ema_momentum is not None else "no EMA"
    replicas = setup.replicas
    return [
        f"config      {config.name}",
        f"strategy    {config.strategy}{where}: {type(setup.strategy).__name__}, "
        f"{replicas} replica(s)",
        f"precision   {setup.policy} ({setup.precision_reason})",
        f"data        {config.dataset}: {info.num_classes} classes, {info.num_train_examples} "
        f"train / {info.num_eval_examples} eval images at {config.image_size}x{config.image_size}",
        f"batch       {config.global_batch_size} global = "
        f"{config.global_batch_size // replicas} x {replicas} replica(s)",
        f"schedule    {config.epochs} epochs x {config.steps_per_epoch} steps; "
        f"{config.optimizer} lr {lr_text}",
        f"model       {config.variant} depth_multiplier {config.depth_multiplier}, "
        f"aux {config.include_aux}, {ema_text}, weight decay {config.weight_decay:g} (L2)"
        + (f", decoupled {config.decoupled_decay:g} (not on {config.no_decay_on})"
           if config.decoupled_decay else ""),
        f"augment     {augmentation_text(config)}",
        f"model_dir   {config.model_dir}",
        f"export_dir  {config.export_dir}",
    ]


def augmentation_text(config):
    """The training images' augmentation in words: the random crop and flip, then what the
    config adds (colour distortion, a policy, erasing, mixing)."""
    parts = [f"colour distortion {config.color_distortion}"] if (
        config.color_distortion != "none") else []
    if config.augment == "randaugment":
        parts.append(f"randaugment ({config.augment_layers} ops at magnitude "
                     f"{config.augment_magnitude:g})")
    elif config.augment == "augmix":
        parts.append(f"augmix (magnitude {config.augment_magnitude:g})")
    if config.random_erasing:
        parts.append(f"random erasing {config.random_erasing:g}")
    for name, alpha in (("mixup", config.mixup_alpha), ("cutmix", config.cutmix_alpha)):
        if alpha:
            parts.append(f"{name} alpha {alpha:g}")
    return "crop and flip" + "".join(f", {part}" for part in parts)


def network_line(model, image_size):
    """Parameters and multiply-adds per image of the network (the latter of the main head, as
    the paper counts them: the auxiliary head runs in training only)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    macs = multiply_adds(inference_model(model))
    return (f"network     {model.count_params() / 1e6:.2f}M parameters ({trainable / 1e6:.2f}M "
            f"trainable now), {macs / 1e9:.3g} G multiply-adds per image at "
            f"{image_size}x{image_size}")


def final_line(results, weights, eval_crops, excluded=0):
    crops = f", {eval_crops} crops" if eval_crops != 1 else ""
    left_out = f" ({excluded} excluded by eval_exclude)" if excluded else ""
    return (f"final evaluation ({weights}{crops}): top-1 {results['top1']:.4f}  "
            f"top-5 {results['top5']:.4f}  cross-entropy {results['cross_entropy']:.4f}  "
            f"on {results['examples']} images{left_out}")


def write_final(results, *, config, class_names, step, weights, summaries, log, out_dir,
                selection=None, kind="final", name=None, extra=None):
    """The evaluation's line, per-class lines, TensorBoard entries, its JSON record and the
    confusion matrix PNG (call on the chief). `kind` "final" (a training run's final
    evaluation): `out_dir`/eval.json and confusion_matrix.png; "eval_only" or "ensemble":
    `out_dir`/evaluations/`name`.json and `name`.png, never overwriting an older record (see
    `record_paths`). `selection`: which checkpoint was scored and why ({"checkpoint": "last" |
    "best", "why": ...}); `extra`: more fields of the record ("excluded", "members",
    "checkpoint", ...). Returns (the record, its path)."""
    extra = extra or {}
    log(final_line(results, weights, config.eval_crops, extra.get("excluded", 0)))
    summaries.final(results, class_names, step)
    matrix = results["confusion"]
    for line in confusion.per_class_lines(matrix, list(class_names)):
        log(line)
    path, png = record_paths(out_dir, kind, name)
    tf.io.gfile.makedirs(os.path.dirname(path))
    confusion.write_confusion_png(png, matrix)
    per_class = confusion.per_class_accuracy(matrix)
    record = {"kind": kind, "config": config.name,
              "top1": results["top1"], "top5": results["top5"],
              "cross_entropy": results["cross_entropy"],
              "examples": results["examples"], "excluded": 0, "eval_crops": config.eval_crops,
              "step": step, "weights": weights, "dataset": config.dataset,
              "image_size": config.image_size, **extra,
              **(selection or {}),
              "per_class_top1": {name: (None if value != value else float(value))
                                 for name, value in zip(class_names, per_class)}}
    atomic.write_text(path, json.dumps(record, indent=2) + "\n")
    log(f"wrote {path} and {png}")
    return record, path


def record_paths(out_dir, kind, name):
    """(JSON record, confusion PNG) paths of an evaluation: the final one's fixed names, else
    the first free `evaluations/<name>[-N].json` (an existing record is never overwritten)."""
    if kind == "final":
        return os.path.join(out_dir, EVAL_FILE), os.path.join(out_dir, CONFUSION_FILE)
    folder, stem, number = os.path.join(out_dir, EVALUATIONS_DIR), name, 1
    while tf.io.gfile.exists(os.path.join(folder, f"{stem}.json")):
        number += 1
        stem = f"{name}-{number}"
    return os.path.join(folder, f"{stem}.json"), os.path.join(folder, f"{stem}.png")


def record_name(config, *, step=None, members=1, excluded=0):
    """What an evaluation record is named after: `step372-crops12`, `init-crops1`,
    `ensemble2-crops144`, with `-exclude1762` when eval_exclude removed images."""
    what = f"ensemble{members}" if members > 1 else f"step{step}" if step is not None else "init"
    return f"{what}-crops{config.eval_crops}" + (f"-exclude{excluded}" if excluded else "")


def note_export(out_dir, export_path, step):
    """Adds where the scored weights were exported to `out_dir`'s eval.json (if it scored
    `step`)."""
    path = os.path.join(out_dir, EVAL_FILE)
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as file:
        record = json.loads(file.read())
    if record.get("step") == step:
        record["exported_to"] = export_path
        atomic.write_text(path, json.dumps(record, indent=2) + "\n")
