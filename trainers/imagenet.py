r"""Train Inception-v3 on ImageNet (or any supported dataset) with tf.distribute and Keras fit.

    python -m trainers.imagenet                         # smoke recipe, bundled data, this CPU
    python -m trainers.imagenet --config tpu --tpu local --data_dir gs://BUCKET/imagenet
    python -m trainers.imagenet --config gpu --data_dir /data/imagenet --batch_size 512
    python -m trainers.imagenet --export_only --model_dir runs/smoke

Reads top to bottom: flags -> config -> strategy -> data -> model -> fit -> evaluate -> export.
Killed at any moment and restarted with the same command, a run continues from its newest
checkpoint (weights, optimizer state with EMA averages, epoch and step). User mistakes print one
`error:` line and exit with code 2.
"""

import argparse
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
    print(message, flush=True)


# ------------------------------------------------------------------------------------------ main


def main(argv=None):
    flags = parse_flags(sys.argv[1:] if argv is None else argv)
    if flags.help_config:
        print("config keys (set with --set key=value):\n" + describe_fields())
        return 0
    try:
        config = config_from_flags(flags)
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

    from inception_keras import distribute
    from inception_keras.training import checkpoints, ema, keras_compat
    from inception_keras.training.optimizers import global_step

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
    # evaluation batches are static (drop_remainder): a full pass is num_eval // global_batch
    eval_steps = config.eval_steps or (info.num_eval_examples or 0) // global_batch or None
    config = config.replace(global_batch_size=global_batch, steps_per_epoch=steps_per_epoch,
                            precision=policy)  # the resolved config, as saved next to checkpoints

    # --- input pipelines, one per input worker, through distribute_datasets_from_function ---
    train_ds = distributed_dataset(strategy, data, config, info, split="train", is_training=True)
    eval_ds = distributed_dataset(strategy, data, config, info, split="validation", is_training=False)

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

    # --- model, optimizer and metrics, all built in the strategy scope ---
    with strategy.scope():
        model = build_and_compile(config, info.num_classes, policy, steps_per_epoch)
    if task_type is not None:  # multi-worker: Keras' own per-fit build fails (see keras_compat)
        keras_compat.prepare_for_multi_worker(
            model, strategy, per_replica_batch=global_batch // replicas,
            image_size=config.image_size, num_classes=info.num_classes,
            include_aux=config.include_aux)
    checkpoint = checkpoints.make_checkpoint(model)
    checkpoint_dir = os.path.join(config.model_dir, checkpoints.CHECKPOINT_SUBDIR)
    restored = checkpoints.restore_latest(checkpoint, checkpoint_dir)
    step = global_step(model.optimizer)
    total_steps = config.epochs * steps_per_epoch
    if restored:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        log(f"resumed from epoch {epoch + 1 if in_epoch else epoch} step "
            f"{in_epoch if in_epoch else steps_per_epoch} (global step {step}) of {restored}")
    write_dir = distribute.worker_dir(checkpoint_dir, strategy)
    manager = checkpoints.make_manager(checkpoint, write_dir, config.keep_checkpoints)

    # --- fit: finish an interrupted epoch first, then whole epochs ---
    callbacks, tensorboard = _callbacks(config, model, manager, data, info, is_chief,
                                        steps_per_epoch, global_batch)
    started = time.perf_counter()
    if step < total_steps:
        stopped = _fit(model, train_ds, eval_ds, config, steps_per_epoch, eval_steps, step,
                       callbacks, manager)
        if stopped:
            log(f"training stopped at step {global_step(model.optimizer)}: loss or weights became "
                f"non-finite; the last good checkpoint is {manager.latest_checkpoint or restored}")
            return 1
        log(f"training done: {total_steps - step} steps in {time.perf_counter() - started:.0f} s")
    else:
        log(f"training already complete ({step} steps); evaluating and exporting")

    # --- final evaluation, with the EMA weights when EMA is on ---
    results = model.evaluate(eval_ds, steps=eval_steps, verbose=0,
                             callbacks=[c for c in [ema.swap_callback(model)] if c],
                             return_dict=True)
    top1, top5 = _metric(results, "top1"), _metric(results, "top5")
    weights = "EMA weights" if ema.uses_ema(model) else "weights"
    log(f"final evaluation ({weights}): top-1 {top1:.4f}  top-5 {top5:.4f}  "
        f"loss {results.get('loss', float('nan')):.4f}")
    if tensorboard is not None:
        tensorboard.write_scalars("final", {"top1": top1, "top5": top5},
                                  global_step(model.optimizer))

    # --- export (chief only; other workers took part in every collective above) ---
    if write_dir != checkpoint_dir:
        shutil.rmtree(write_dir, ignore_errors=True)
    if is_chief:
        with ema.ema_weights(model):
            path = _export(config, model, info)
        log(f"exported the model to {path}")
    else:
        log(f"{task_type} {task_id}: done (the chief exports)")
    return 0


# ------------------------------------------------------------------------------------- the steps


def _setup_strategy(config):
    from inception_keras import distribute

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
                               steps_per_epoch=config.steps_per_epoch)
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


def build_and_compile(config, num_classes, policy, steps_per_epoch):
    """Model + weight decay + optimizer + losses/metrics (call in the strategy scope)."""
    from inception_keras.training import losses, optimizers, regularization
    from inception_keras.training.fused_batch_norm import with_fused_batch_norm
    from inception_keras.training.schedules import make_schedule

    model = _build_model(config, num_classes)
    if config.fused_batch_norm:
        model = with_fused_batch_norm(model)  # same weights and maths, one kernel per BN
    regularization.add_kernel_weight_decay(model, config.weight_decay)
    schedule, _ = make_schedule(config, global_batch_size=config.global_batch_size,
                                steps_per_epoch=steps_per_epoch)
    optimizer = optimizers.make_optimizer(config, schedule, policy=policy)
    loss, loss_weights = losses.make_losses(include_aux=config.include_aux,
                                            label_smoothing=config.label_smoothing,
                                            aux_weight=config.aux_loss_weight)
    model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                  metrics=losses.make_metrics(include_aux=config.include_aux,
                                              num_classes=num_classes),
                  steps_per_execution=config.steps_per_execution,
                  jit_compile="auto" if config.jit_compile is None else config.jit_compile)
    optimizer.build(model.trainable_variables)  # slots (and EMA) exist before a restore
    return model


def input_fn(data, config, info, *, split, is_training):
    from inception_keras.training.losses import targets_for

    make = data.make_input_fn(
        config.dataset, data_dir=config.data_dir, split=split, image_size=config.image_size,
        global_batch_size=config.global_batch_size, is_training=is_training, dtype="float32",
        deterministic=config.deterministic, seed=config.seed, num_classes=info.num_classes,
        color_distortion=config.color_distortion and is_training,
        cache_dir=None if is_training else config.cache_dir)
    to_targets = targets_for(config.include_aux)
    return lambda context: make(context).map(to_targets)


def distributed_dataset(strategy, data, config, info, *, split, is_training):
    fn = input_fn(data, config, info, split=split, is_training=is_training)
    try:
        return strategy.distribute_datasets_from_function(fn)
    except data.DataError as error:
        raise _UserError(str(error)) from None


def _callbacks(config, model, manager, data, info, is_chief, steps_per_epoch, global_batch):
    import keras

    from inception_keras.training import callbacks as cbs
    from inception_keras.training import checkpoints, ema

    every = config.log_every_steps
    callbacks = [keras.callbacks.TerminateOnNaN()]
    swap = ema.swap_callback(model)
    if swap is not None:
        callbacks.append(swap)  # validation inside fit uses the EMA weights
    callbacks.append(checkpoints.CheckpointCallback(manager, config.checkpoint_every_steps,
                                                    print_fn=log))
    callbacks.append(data.CorruptRecordReport(log=log))
    tensorboard = None
    if is_chief:
        callbacks.append(cbs.ProgressLogger(steps_per_epoch=steps_per_epoch, epochs=config.epochs,
                                            global_batch_size=global_batch, every_steps=every,
                                            print_fn=log))
        samples = _sample_images(data, config, info) if config.image_summaries else None
        tensorboard = cbs.TensorBoardLogger(os.path.join(config.model_dir, "tensorboard"),
                                            every_steps=every, global_batch_size=global_batch,
                                            sample_images=samples)
        callbacks.append(tensorboard)
    return callbacks, tensorboard


def _sample_images(data, config, info, count=16):
    import tensorflow as tf

    fn = input_fn(data, config.replace(global_batch_size=count), info, split="train",
                   is_training=True)
    for images, _ in fn(tf.distribute.InputContext()).take(1):
        return images.numpy()[:count]
    return None


def _fit(model, train_ds, eval_ds, config, steps_per_epoch, eval_steps, step, callbacks,
         manager):
    """Keras fit from global step `step`; returns True when training stopped early (NaN)."""
    validation = {}
    if config.eval_every_epochs:
        validation = dict(validation_data=eval_ds, validation_steps=eval_steps,
                          validation_freq=config.eval_every_epochs)
    epoch, in_epoch = divmod(step, steps_per_epoch)
    if in_epoch:  # the interrupted epoch: only its remaining steps
        model.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1,
                  steps_per_epoch=steps_per_epoch - in_epoch, callbacks=callbacks, verbose=0,
                  shuffle=False, **validation)
        if model.stop_training:
            return True
        _reload_raw_weights(model, manager)
        epoch += 1
    if epoch < config.epochs:
        model.fit(train_ds, initial_epoch=epoch, epochs=config.epochs,
                  steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0,
                  shuffle=False, **validation)
        if model.stop_training:
            return True
        _reload_raw_weights(model, manager)
    return False


def _reload_raw_weights(model, manager):
    """Undo Keras' end-of-fit EMA overwrite: `fit` ends with `optimizer.finalize_variable_values`,
    which copies the averages into the model. The epoch-end checkpoint written just before holds
    the raw weights; restoring it keeps "raw weights in the model, averages in the optimizer"."""
    from inception_keras.training import checkpoints, ema

    if ema.uses_ema(model):
        checkpoints.make_checkpoint(model).restore(manager.latest_checkpoint) \
            .assert_existing_objects_matched()


def _metric(results, name):
    from inception_keras.training.losses import metric_value

    value = metric_value(results, name)
    return float("nan") if value is None else value


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

    keras.mixed_precision.set_dtype_policy("float32")  # no strategy: this process, its CPU/GPU
    info = _dataset_info(_import_data(), config)
    model = build_and_compile(config, info.num_classes, config.precision, config.steps_per_epoch)
    checkpoint_dir = os.path.join(config.model_dir, checkpoints.CHECKPOINT_SUBDIR)
    restored = checkpoints.restore_latest(checkpoints.make_checkpoint(model), checkpoint_dir)
    if restored is None:
        raise _UserError(f"--export_only: no checkpoint in {checkpoint_dir}; train first")
    log(f"restored {restored}")
    with ema.ema_weights(model):
        path = _export(config, model, info)
    log(f"exported the model to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
