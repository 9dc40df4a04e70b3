r"""Train Inception-v3 on ImageNet (or any supported dataset) with tf.distribute.

    python -m trainers.imagenet                         # smoke recipe, bundled data, this CPU
    python -m trainers.imagenet --config tpu --tpu local --data_dir gs://BUCKET/imagenet
    python -m trainers.imagenet --config gpu --data_dir /data/imagenet --batch_size 512
    python -m trainers.imagenet --config finetune --dataset folder:/data/my_photos
    python -m trainers.imagenet --eval_only --model_dir runs/smoke --set eval_crops=10
    python -m trainers.imagenet --export_only --model_dir runs/smoke

Reads top to bottom: flags -> config -> strategy -> data -> model and step functions -> train
loop (validating as configured) -> final evaluation -> export. The step functions are the
trainer's own (inception_keras/training/steps.py: strategy.run inside a tf.function, clipping
after the all-reduce); Keras keeps the model and the optimizer. Killed at any moment and
restarted with the same command, a run continues from its newest checkpoint (weights, optimizer
state, EMA averages, step counter); SIGTERM saves at the step in flight first. User mistakes
print one `error:` line and exit with code 2.
"""

import argparse
import math
import os
import shutil
import sys
import time

from configs import RECIPES, ConfigError, apply_overrides, describe_fields, get_config

USER_ERROR = 2

# ----------------------------------------------------------------------------------------- flags

_EPILOG = f"""\
recipes (--config): {', '.join(RECIPES)}; or a path to a .py file defining get_config().
  smoke  bundled ~10-class dataset, 96x96, narrow model, a few minutes on a laptop CPU (default)
  paper  the paper's RMSprop recipe, 32 images per replica, 100 epochs, on GPUs
  tpu    the Cloud TPU reference: batch 1024, bfloat16, EMA, weight decay, ~170 epochs
  gpu    8-GPU recipe with mixed_float16
  finetune  your own photos (--dataset folder:PATH) from Keras' ImageNet weights
every config key can be changed with --set key=value (list them with --help_config), e.g.
  --set image_size=128 --set depth_multiplier=0.5 --set ema_momentum=none
outputs: checkpoints, TensorBoard logs and config.json under --model_dir (default runs/<config>);
the SavedModel under <export_dir>/<model_name>/<version> (a new version each time, never overwritten).
interrupted or killed? rerun the same command: it resumes from the newest checkpoint.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        self.exit(USER_ERROR, f"error: {message} (see python -m trainers.imagenet --help)\n")


def parse_flags(argv):
    parser = _Parser(
        prog="python -m trainers.imagenet",
        description="Train Inception-v3 with tf.distribute; with no arguments, a few-minute "
                    "demo run on the bundled smoke dataset.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--config", default="smoke", help="recipe name or path to a .py config (default: smoke)")
    add("--strategy", help="tpu | mirrored | multi_worker | one_device | cpu (default: the "
                           "recipe's)")
    add("--tpu", help="TPU name for TPUClusterResolver, or 'local' on a TPU VM (default: local)")
    add("--devices", help="mirrored: comma-separated devices, e.g. /gpu:0,/gpu:1 (default: all "
                          "GPUs)")
    add("--cpu_devices", type=int, help="split the CPU into N logical devices (try mirrored "
                                        "without GPUs)")
    add("--dataset", help="imagenet_tfrecord | tfds:NAME | folder:PATH | synthetic | smoke")
    add("--data_dir", help="where the dataset lives")
    add("--model_dir", help="checkpoints, logs and config.json (default: runs/<config>)")
    add("--epochs", type=int, help="number of epochs")
    add("--steps_per_epoch", type=int, help="training steps per epoch (default: one pass)")
    add("--batch_size", type=int, help="GLOBAL batch size, over all replicas")
    add("--precision", help="auto | float32 | mixed_bfloat16 | mixed_float16 (default: auto: "
                            "bf16 on TPU, fp16 on GPU, bf16 on CPUs with AVX512_BF16/AMX)")
    add("--export_dir", help="SavedModel root (default: saved_models)")
    add("--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any config key (repeatable), e.g. --set image_size=96")
    add("--export_only", action="store_true",
        help="export the newest checkpoint of --model_dir (no training)")
    add("--eval_only", action="store_true",
        help="evaluate the newest checkpoint of --model_dir (or --set init_weights=PATH) on the "
             "validation split, every image once; writes <model_dir>/eval.json (no training)")
    add("--help_config", action="store_true", help="list every config key with its default")
    return parser.parse_args(argv)


_FLAG_KEYS = {"strategy": "strategy", "tpu": "tpu", "devices": "devices",
              "cpu_devices": "num_cpu_devices", "dataset": "dataset", "data_dir": "data_dir",
              "model_dir": "model_dir", "epochs": "epochs", "steps_per_epoch": "steps_per_epoch",
              "precision": "precision", "export_dir": "export_dir"}


def config_from_flags(flags):
    """Recipe, then the named flags, then --set; validated (no TensorFlow needed)."""
    config = get_config(flags.config)
    changes = {key: getattr(flags, flag) for flag, key in _FLAG_KEYS.items()
               if getattr(flags, flag) is not None}
    if flags.batch_size is not None:
        changes["global_batch_size"] = flags.batch_size
    config = apply_overrides(config.replace(**changes), flags.set)
    if not config.model_dir:
        config = config.replace(model_dir=os.path.join("runs", config.name))
    if flags.batch_size is not None and flags.batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {flags.batch_size}")
    return config.validate()


def log(message):
    from inception_keras.training.progress import setup_logging

    setup_logging().info(message)


# ------------------------------------------------------------------------------------------ main


def main(argv=None):
    flags = parse_flags(sys.argv[1:] if argv is None else argv)
    if flags.help_config:
        print("config keys (set with --set key=value):\n" + describe_fields())
        return 0
    try:
        config = config_from_flags(flags)
        if flags.export_only and flags.eval_only:
            raise ConfigError("--export_only and --eval_only: pick one")
        if flags.eval_only:
            return evaluate_only(config)
        return run(config, export_only=flags.export_only)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return USER_ERROR
    except _UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return USER_ERROR


class _UserError(Exception):
    """Any failure the user can fix (data, strategy, resume conflict); carries one line."""


def run(config, *, export_only=False):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if export_only:
        return _export_only(config)

    # --- strategy and precision (TensorFlow is imported only now: config errors stay fast) ---
    strategy, policy, reason = _setup_strategy(config)
    import keras

    from inception_keras.training import checkpoints, distribute, ema, preemption

    replicas = strategy.num_replicas_in_sync
    task_type, task_id, is_chief = distribute.task_info(strategy)
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)

    # --- data: sizes decide the global batch, steps per epoch and the schedule ---
    data = _import_data()
    info = _dataset_info(data, config)
    global_batch = config.global_batch_size or config.per_replica_batch_size * replicas
    if global_batch % replicas:
        raise _UserError(
            f"global batch {global_batch} is not divisible by the {replicas} replicas: pass "
            f"--batch_size {max(global_batch // replicas, 1) * replicas} (a multiple of {replicas})")
    if not config.steps_per_epoch and not info.num_train_examples:
        raise _UserError(f"the size of {config.dataset}'s training split is unknown: pass "
                         "--steps_per_epoch N")
    steps_per_epoch = config.steps_per_epoch or info.num_train_examples // global_batch
    if steps_per_epoch < 1:
        raise _UserError(
            f"{info.num_train_examples} training examples make no full batch of {global_batch}: "
            "pass a smaller --batch_size or --steps_per_epoch N")
    config = config.replace(global_batch_size=global_batch, steps_per_epoch=steps_per_epoch,
                            precision=policy)  # the resolved config, as saved next to checkpoints

    # --- input pipelines, one per input worker, through distribute_datasets_from_function ---
    train_ds = distributed_dataset(strategy, data, config, info, split="train", is_training=True)
    eval_ds = distributed_dataset(strategy, data, config, info, split="validation",
                                  is_training=False)

    # --- model dir: refuse to resume a run whose saved config conflicts ---
    saved = checkpoints.load_config_dict(config.model_dir)
    if saved is not None:
        try:
            checkpoints.check_resume_compatible(saved, config)
        except checkpoints.ResumeConflict as error:
            raise _UserError(str(error)) from None
    if is_chief:
        checkpoints.save_config(config, config.model_dir)

    _summary(config, strategy, replicas, policy, reason, info, task_type, task_id)

    # --- model, optimizer, EMA, loss scale and the step functions, in the strategy scope ---
    with strategy.scope():
        steps = build_training(config, info.num_classes, policy, strategy,
                               info.num_train_examples)
    checkpoint = steps_checkpoint(steps)
    checkpoint_dir = os.path.join(config.model_dir, checkpoints.CHECKPOINT_SUBDIR)
    restored = checkpoints.restore_latest(checkpoint, checkpoint_dir)
    step = int(steps.counters.step.numpy())
    total_steps = config.epochs * steps_per_epoch
    if restored:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        log(f"resumed from epoch {epoch + 1 if in_epoch else epoch} step "
            f"{in_epoch if in_epoch else steps_per_epoch} (global step {step}) of {restored}")
    elif config.init_weights:  # a fresh fine-tune; a resumed one keeps its own checkpoint
        load_init_weights(config, steps)
    write_dir = distribute.worker_dir(checkpoint_dir, strategy)
    manager = checkpoints.make_manager(checkpoint, write_dir, config.keep_checkpoints)
    summaries = _summaries(config, data, info, is_chief, step)
    _report_folder_problems(config)

    # --- train: whole epochs of exactly steps_per_epoch steps, validating as configured ---
    started = time.perf_counter()
    final = None
    if step < total_steps:
        outcome, final = train(config, steps, train_ds, eval_ds, manager, summaries, step,
                               preemption.SigtermWatch(strategy), data)
        if outcome == "nan":
            log(f"training stopped at step {int(steps.counters.step.numpy())}: loss or weights "
                "became non-finite; the last good checkpoint is "
                f"{manager.latest_checkpoint or restored}")
            return 1
        if outcome == "preempted":
            log(f"SIGTERM: saved {manager.latest_checkpoint} at step "
                f"{int(steps.counters.step.numpy())}; rerun the same command to resume")
            return preemption.EXIT_CODE
        log(f"training done: {total_steps - step} steps in {time.perf_counter() - started:.0f} s")
    else:
        log(f"training already complete ({step} steps); evaluating and exporting")

    # --- final evaluation (the last epoch's validation when it used the same crops) ---
    if final is None or config.eval_crops != 1:
        final = evaluate(config, steps, _eval_dataset(strategy, data, config, info, eval_ds))
    report_final(config, steps, info, final, summaries, is_chief)

    # --- export (chief only; other workers took part in every collective above) ---
    if write_dir != checkpoint_dir:
        shutil.rmtree(write_dir, ignore_errors=True)
    if is_chief:
        with ema.ema_weights(steps.ema):
            path = _export(config, steps.model, info)
        log(f"exported the model to {path}")
    else:
        log(f"{task_type} {task_id}: done (the chief exports)")
    return 0


def train(config, steps, train_ds, eval_ds, manager, summaries, step, sigterm, data):
    """The training loop from global step `step`: returns ("done" | "nan" | "preempted", the
    last epoch's validation results or None)."""
    from inception_keras.training import checkpoints, progress

    steps_per_epoch, total = config.steps_per_epoch, config.epochs * config.steps_per_epoch
    iterator = iter(train_ds)
    window, epoch_window = progress.Window(), progress.Window()
    timed, last_logged, corrupt_seen = False, step, data.corrupt_records_seen()
    validation, trainable = None, "all"  # a new model trains every layer
    while step < total:
        wanted = "head" if step // steps_per_epoch < config.head_epochs else config.trainable_from
        if wanted != trainable:
            trainable = set_trainable(steps, wanted)
        count = _steps_in_next_call(step, config)
        stats = steps.train(iterator, count)
        step += count
        window.add(stats, count)
        epoch_window.add(stats, count)
        if not math.isfinite(stats["loss"]):
            return "nan", None
        end_of_epoch = step % steps_per_epoch == 0
        if step - last_logged >= config.log_every_steps or end_of_epoch:
            _log_progress(config, steps, summaries, step, window.means(), timed)
            window.reset()
            timed, last_logged = True, step
        if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0 \
                and not end_of_epoch:
            checkpoints.save_if_finite(manager, step, steps.model, stats["loss"])
        if end_of_epoch:
            epoch = step // steps_per_epoch
            corrupt_seen = _report_corrupt(data, epoch, corrupt_seen)
            validation = None
            if config.eval_every_epochs and (epoch % config.eval_every_epochs == 0
                                             or epoch == config.epochs):
                validation = evaluate(config, steps, eval_ds)
                summaries.scalars("eval", {k: validation[k] for k in ("top1", "top5", "loss")},
                                  step)
            log(progress.epoch_line(epoch, config.epochs, epoch_window.means(), validation))
            epoch_window.reset()
            checkpoints.save_if_finite(manager, step, steps.model, stats["loss"])
            window.reset()
            timed = False  # the next lap would include the evaluation
        if sigterm.requested():
            checkpoints.save_if_finite(manager, step, steps.model, stats["loss"])
            return "preempted", None
    return "done", validation


def _steps_in_next_call(step, config):
    """Up to steps_per_execution steps, never across an epoch end or a checkpoint step."""
    limit = config.steps_per_epoch - step % config.steps_per_epoch
    if config.checkpoint_every_steps:
        limit = min(limit, config.checkpoint_every_steps - step % config.checkpoint_every_steps)
    return min(config.steps_per_execution, limit)


def _log_progress(config, steps, summaries, step, means, timed):
    from inception_keras.training import progress

    skipped = int(steps.counters.skipped.numpy())
    learning_rate = float(steps.learning_rate())
    log(progress.step_line(step, config.steps_per_epoch, config.epochs, means, learning_rate,
                           skipped, timed=timed))
    values = {"loss": means["loss"], "top1": means["top1"], "learning_rate": learning_rate,
              "skipped_steps": skipped}
    summaries.scalars("train", values, step)
    if timed:
        summaries.scalars("perf", {k: means[k] for k in ("step_time_s", "images_per_s")}, step)


def _report_corrupt(data, epoch, seen):
    total = data.corrupt_records_seen()
    if total > seen:
        log(f"epoch {epoch}: dropped {total - seen} corrupt or undecodable records "
            f"({total} in total)")
    return total


def evaluate(config, steps, eval_ds):
    """Every validation image once (or the first eval_steps batches), with the EMA weights."""
    from inception_keras.training import ema

    with ema.ema_weights(steps.ema):
        return steps.evaluate(eval_ds, max_steps=config.eval_steps or None,
                              steps_per_call=config.steps_per_execution)


def _eval_dataset(strategy, data, config, info, single_crop_ds):
    """The evaluation input of `config.eval_crops`: the single-crop one, or one whose examples
    hold every crop of an image ([crops, S, S, 3]), fewer images per batch to bound memory."""
    crops = config.eval_crops
    if crops == 1:
        return single_crop_ds
    replicas = strategy.num_replicas_in_sync
    images = max(config.global_batch_size // crops // replicas, 1) * replicas
    return distributed_dataset(strategy, data, config.replace(global_batch_size=images), info,
                               split="validation", is_training=False, eval_crops=crops)


def report_final(config, steps, info, results, summaries, is_chief):
    """The final line, TensorBoard scalars and, on the chief, eval.json, per-class accuracy and
    the confusion-matrix PNG in model_dir."""
    import json

    import tensorflow as tf

    from inception_keras import atomic
    from inception_keras.training import confusion

    weights = "EMA weights" if steps.ema is not None else "weights"
    crops = f", {config.eval_crops} crops" if config.eval_crops != 1 else ""
    log(f"final evaluation ({weights}{crops}): top-1 {results['top1']:.4f}  "
        f"top-5 {results['top5']:.4f}  loss {results['loss']:.4f}  "
        f"on {results['examples']} images")
    step = int(steps.counters.step.numpy())
    summaries.scalars("final", {k: results[k] for k in ("top1", "top5", "loss")}, step)
    if not is_chief:
        return
    matrix = results["confusion"]
    per_class = confusion.per_class_accuracy(matrix)
    for line in confusion.per_class_lines(matrix, list(info.class_names)):
        log(line)
    summaries.images("final/confusion_matrix", confusion.confusion_image(matrix)[None], step,
                     "rows: true class, columns: predicted class, row-normalised")
    tf.io.gfile.makedirs(config.model_dir)
    png = os.path.join(config.model_dir, "confusion_matrix.png")
    confusion.write_confusion_png(png, matrix)
    record = {"top1": results["top1"], "top5": results["top5"], "loss": results["loss"],
              "examples": results["examples"], "eval_crops": config.eval_crops, "step": step,
              "weights": weights, "dataset": config.dataset,
              "per_class_top1": {name: (None if value != value else float(value))
                                 for name, value in zip(info.class_names, per_class)}}
    atomic.write_text(os.path.join(config.model_dir, "eval.json"),
                      json.dumps(record, indent=2) + "\n")
    log(f"wrote {os.path.join(config.model_dir, 'eval.json')} and {png}")


def load_init_weights(config, steps, *, evaluating=False):
    """Starts a fresh run from `init_weights` (classifiers of another size start fresh); for an
    evaluation the weights must fit whole, classifier included."""
    from inception_keras.training import transfer

    try:
        report = transfer.load_init_weights(steps.model, config.init_weights,
                                            include_aux=config.include_aux)
    except ValueError as error:
        hint = (" (--eval_only builds the network of --config: pass the recipe the weights "
                "were trained with, e.g. --config finetune for Keras' ImageNet file)"
                if evaluating else "")
        raise _UserError(f"{error}{hint}") from None
    if evaluating and report.kept_fresh:
        raise _UserError(f"--eval_only: {config.init_weights} has another number of classes than "
                         f"{config.dataset} ({'; '.join(report.lines())}): scoring a fresh "
                         "classifier means nothing; evaluate on the dataset the weights know")
    for line in report.lines():
        log(line)
    if steps.ema is not None:
        steps.ema.reset()  # average the loaded weights, not the random ones


def set_trainable(steps, spec):
    """Freezes the layers before `spec` (all | head | a layer name; frozen batch norm runs in
    inference mode) and retraces the step functions; returns `spec`."""
    from inception_keras.training import transfer

    try:
        summary = transfer.set_trainable_from(steps.model, spec)
    except ValueError as error:
        raise _UserError(f"trainable_from: {error}") from None
    steps.retrace()
    log(str(summary))
    return spec


def _report_folder_problems(config):
    """Once per run: the files of a folder dataset that are skipped or cannot be decoded."""
    if not config.dataset.startswith("folder:"):
        return
    from inception_keras.data.folder import describe_folder_problems, folder_problems

    root = config.dataset.split(":", 1)[1]
    problems = folder_problems(root)
    if problems:
        log(describe_folder_problems(problems, root))


def evaluate_only(flags_config):
    """--eval_only: a run's newest checkpoint (its config.json), or `init_weights`, scored on
    the validation split with `eval_crops`; eval.json, per-class results, TensorBoard."""
    from configs.base import TrainConfig
    from inception_keras.training import checkpoints

    saved = checkpoints.load_config_dict(flags_config.model_dir)
    config = flags_config
    if saved is not None and not flags_config.init_weights:
        keep = {key: getattr(flags_config, key) for key in
                ("eval_crops", "eval_steps", "data_dir", "strategy", "num_cpu_devices", "tpu",
                 "devices", "model_dir")}
        config = TrainConfig.from_dict(saved).replace(**keep)
    elif not flags_config.init_weights:
        raise _UserError(f"--eval_only: {flags_config.model_dir} has no "
                         f"{checkpoints.CONFIG_FILE}; pass the --model_dir of a training run, or "
                         "--set init_weights=PATH with --dataset")
    strategy, policy, reason = _setup_strategy(config)
    data = _import_data()
    info = _dataset_info(data, config)
    replicas = strategy.num_replicas_in_sync
    batch = config.global_batch_size or config.per_replica_batch_size * replicas
    batch = max(batch // replicas, 1) * replicas
    config = config.replace(global_batch_size=batch, steps_per_epoch=config.steps_per_epoch or 1,
                            precision=policy)
    log(f"evaluating {config.init_weights or config.model_dir} on {config.dataset}'s validation "
        f"split ({info.num_eval_examples} images), {config.eval_crops} crop(s), "
        f"{type(strategy).__name__} x{replicas}, {policy}")
    with strategy.scope():
        steps = build_training(config, info.num_classes, policy, strategy)
    if config.init_weights:
        load_init_weights(config, steps, evaluating=True)
    else:
        checkpoint_dir = os.path.join(config.model_dir, checkpoints.CHECKPOINT_SUBDIR)
        restored = checkpoints.restore_latest(steps_checkpoint(steps), checkpoint_dir,
                                              expect_partial=True)
        if restored is None:
            raise _UserError(f"--eval_only: no checkpoint in {checkpoint_dir}; train first")
        log(f"restored {restored}")
    eval_ds = distributed_dataset(strategy, data, config, info, split="validation",
                                  is_training=False)
    results = evaluate(config, steps, _eval_dataset(strategy, data, config, info, eval_ds))
    from inception_keras.training.progress import Summaries

    summaries = Summaries(os.path.join(config.model_dir, "tensorboard"))
    report_final(config, steps, info, results, summaries, is_chief=True)
    return 0


# ------------------------------------------------------------------------------------- the steps


def _setup_strategy(config):
    from inception_keras.training import distribute

    try:
        distribute.setup_cpu_devices(config.num_cpu_devices)
        strategy = distribute.make_strategy(config.strategy, tpu=config.tpu,
                                            devices=config.devices)
    except distribute.StrategyError as error:
        raise _UserError(str(error)) from None
    policy = distribute.resolve_precision(config.precision, strategy)
    import keras

    keras.mixed_precision.set_dtype_policy(policy)
    return strategy, policy, distribute.precision_reason(config.precision, policy, strategy)


def _import_data():
    import inception_keras.data as data

    return data


def _dataset_info(data, config):
    try:
        return data.dataset_info(config.dataset, config.data_dir)
    except data.DataError as error:
        raise _UserError(str(error)) from None


def _summary(config, strategy, replicas, policy, reason, info, task_type, task_id):
    from inception_keras.training.schedules import make_schedule

    _, lr_text = make_schedule(config, global_batch_size=config.global_batch_size,
                               steps_per_epoch=config.steps_per_epoch,
                               num_train_examples=info.num_train_examples)
    where = f" ({task_type} {task_id})" if task_type else ""
    ema_text = f"EMA {config.ema_momentum}" if config.ema_momentum is not None else "no EMA"
    lines = [
        f"config      {config.name}",
        f"strategy    {config.strategy}{where}: {type(strategy).__name__}, {replicas} replica(s)",
        f"precision   {policy} ({reason})",
        f"data        {config.dataset}: {info.num_classes} classes, {info.num_train_examples} "
        f"train / {info.num_eval_examples} eval images at {config.image_size}x{config.image_size}",
        f"batch       {config.global_batch_size} global = "
        f"{config.global_batch_size // replicas} x {replicas} replica(s)",
        f"schedule    {config.epochs} epochs x {config.steps_per_epoch} steps; "
        f"{config.optimizer} lr {lr_text}",
        f"model       {config.variant} depth_multiplier {config.depth_multiplier}, "
        f"aux {config.include_aux}, {ema_text}, weight decay {config.weight_decay:g}",
        f"model_dir   {config.model_dir}",
        f"export_dir  {config.export_dir}",
    ]
    log("\n".join(lines))


def _build_model(config, num_classes):
    from inception_keras import build_inception_v3

    try:
        return build_inception_v3(
            weights=None, input_shape=(config.image_size, config.image_size, 3),
            classes=num_classes, include_aux=config.include_aux,
            dropout_rate=config.dropout_rate, variant=config.variant,
            depth_multiplier=config.depth_multiplier, min_depth=config.min_depth,
            batch_norm_momentum=config.batch_norm_momentum)
    except ValueError as error:
        raise _UserError(f"cannot build the model: {error}") from None


def build_training(config, num_classes, policy, strategy, num_train_examples=None):
    """Model (+ weight decay), optimizer on the trainer's step, EMA, loss scale and the step
    functions (call in the strategy scope; config has the resolved batch and epoch length)."""
    from inception_keras.training import optimizers, regularization
    from inception_keras.training.ema import ExponentialMovingAverage
    from inception_keras.training.fused_batch_norm import with_fused_batch_norm
    from inception_keras.training.loss_scale import DynamicLossScale
    from inception_keras.training.schedules import make_schedule
    from inception_keras.training.steps import Counters, Steps

    model = _build_model(config, num_classes)
    if config.fused_batch_norm:
        model = with_fused_batch_norm(model)  # same weights and maths, one kernel per BN
    regularization.add_kernel_weight_decay(model, config.weight_decay)
    counters = Counters()
    schedule, _ = make_schedule(config, global_batch_size=config.global_batch_size,
                                steps_per_epoch=config.steps_per_epoch,
                                num_train_examples=num_train_examples)
    learning_rate = lambda: schedule(counters.step)  # noqa: E731 (follows the trainer's step)
    optimizer = optimizers.make_optimizer(config, learning_rate)
    optimizer.build(model.trainable_variables)  # slots exist before a restore
    ema = (ExponentialMovingAverage(model, config.ema_momentum)
           if config.ema_momentum is not None else None)
    loss_scale = DynamicLossScale() if policy == "mixed_float16" else None
    if config.jit_compile and strategy.num_replicas_in_sync > 1 and \
            not isinstance(strategy, _tpu_strategy_class()):
        raise _UserError("jit_compile=true compiles the step of one replica with XLA: use it "
                         "with one device per process (TPUs always compile)")
    return Steps(model, optimizer, strategy, counters=counters, learning_rate=learning_rate,
                 global_batch_size=config.global_batch_size, num_classes=num_classes,
                 label_smoothing=config.label_smoothing, aux_weight=config.aux_loss_weight,
                 clipnorm=config.global_clipnorm, loss_scale=loss_scale, ema=ema,
                 jit_compile=bool(config.jit_compile))


def _tpu_strategy_class():
    import tensorflow as tf

    return tf.distribute.TPUStrategy


def steps_checkpoint(steps):
    """Everything a resume needs, as one tf.train.Checkpoint."""
    from inception_keras.training import checkpoints

    return checkpoints.make_checkpoint(model=steps.model, optimizer=steps.optimizer,
                                       counters=steps.counters, ema=steps.ema,
                                       loss_scale=steps.loss_scale)


def input_fn(data, config, info, *, split, is_training, eval_crops=1):
    """Training: (images, labels) batches forever; evaluation: (images, labels, weights), one
    padded pass (see make_input_fn's `masked`)."""
    make = data.make_input_fn(
        config.dataset, data_dir=config.data_dir, split=split, image_size=config.image_size,
        global_batch_size=config.global_batch_size, is_training=is_training, dtype="float32",
        deterministic=config.deterministic, seed=config.seed, num_classes=info.num_classes,
        color_distortion=config.color_distortion if is_training else "none",
        cache_dir=None if is_training else config.cache_dir, masked=not is_training,
        **({"eval_crops": eval_crops} if eval_crops != 1 else {}))
    return make


def distributed_dataset(strategy, data, config, info, *, split, is_training, eval_crops=1):
    fn = input_fn(data, config, info, split=split, is_training=is_training, eval_crops=eval_crops)
    try:
        return strategy.distribute_datasets_from_function(fn)
    except data.DataError as error:
        raise _UserError(str(error)) from None


def _summaries(config, data, info, is_chief, step):
    """TensorBoard writer of the chief (with the augmented-image grid); a no-op elsewhere."""
    from inception_keras.training.progress import Summaries

    summaries = Summaries(os.path.join(config.model_dir, "tensorboard") if is_chief else None)
    if is_chief and config.image_summaries:
        summaries.images("augmented_inputs", _sample_images(data, config, info), step,
                         "training images after augmentation")
    return summaries


def _sample_images(data, config, info, count=16):
    import tensorflow as tf

    fn = input_fn(data, config.replace(global_batch_size=count), info, split="train",
                   is_training=True)
    for images, _ in fn(tf.distribute.InputContext()).take(1):
        return images.numpy()[:count]
    return None


def _export(config, model, info):
    """A float32, single-output copy of `model`'s current weights, exported for serving."""
    import keras

    from inception_keras.export import ExportError, export_saved_model

    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        serving = _build_model(config, info.num_classes)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
    serving.set_weights(model.get_weights())
    try:
        return export_saved_model(serving, config.export_dir, model_name=config.model_name,
                                  class_names=list(info.class_names),
                                  image_size=config.image_size)
    except ExportError as error:
        raise _UserError(f"export failed ({error}); the checkpoints in {config.model_dir} are "
                         f"kept: fix it and run --export_only --model_dir {config.model_dir}") \
            from None


def _export_only(flags_config):
    """Rebuild the model from `<model_dir>/config.json`, restore its newest checkpoint, export."""
    from configs.base import TrainConfig
    from inception_keras.training import checkpoints, ema

    saved = checkpoints.load_config_dict(flags_config.model_dir)
    if saved is None:
        raise _UserError(f"--export_only: {flags_config.model_dir} has no {checkpoints.CONFIG_FILE}"
                         "; pass the --model_dir of a training run")
    config = TrainConfig.from_dict(saved).replace(export_dir=flags_config.export_dir)
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_dtype_policy("float32")  # no strategy: this process, its CPU/GPU
    info = _dataset_info(_import_data(), config)
    steps = build_training(config, info.num_classes, config.precision, tf.distribute.get_strategy())
    checkpoint_dir = os.path.join(config.model_dir, checkpoints.CHECKPOINT_SUBDIR)
    restored = checkpoints.restore_latest(steps_checkpoint(steps), checkpoint_dir)
    if restored is None:
        raise _UserError(f"--export_only: no checkpoint in {checkpoint_dir}; train first")
    log(f"restored {restored}")
    with ema.ema_weights(steps.ema):
        path = _export(config, steps.model, info)
    log(f"exported the model to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
