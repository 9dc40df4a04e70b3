r"""Train Inception-v3 on ImageNet (or any supported dataset) with tf.distribute.

    python -m trainers.imagenet                         # smoke recipe, bundled data, this CPU
    python -m trainers.imagenet --config tpu --tpu local --data_dir gs://BUCKET/imagenet
    python -m trainers.imagenet --config gpu --data_dir /data/imagenet --batch_size 512
    python -m trainers.imagenet --config finetune --dataset folder:/data/my_photos
    python -m trainers.imagenet --eval_only --model_dir runs/smoke --set eval_crops=10
    python -m trainers.imagenet --eval_only --model_dir runs/a --model_dir runs/b   # ensemble
    python -m trainers.imagenet --eval_only --watch --model_dir runs/tpu --strategy cpu
    python -m trainers.imagenet --export_only --model_dir runs/smoke

Reads top to bottom: flags -> config -> one of the three entries of
`inception_keras.training.entries` (train, evaluate, export), which build the `Trainer` and run
its loop. Killed at any moment and restarted with the same command, a run continues from its
newest checkpoint (weights, optimizer state, EMA averages, step counter); SIGTERM saves at the
step in flight first; a finished run started again does only what is missing. Relative paths
mean the current directory. Exit status: 0 done, 1 non-finite loss, 2 a user mistake (one
`error:` line), 143 preempted by SIGTERM (rerun to resume), 170 a multi-worker peer was lost
(restart every worker).
"""

import argparse
import os
import sys
import time

from configs import RECIPES, ConfigError, apply_overrides, describe_fields, get_config
from inception_keras.paper import PAPER_RECIPES, target_line

USER_ERROR = 2
DEFAULT_RECIPE = "smoke"

# ----------------------------------------------------------------------------------------- flags

_PAPER_ROWS = "\n".join(f"  {name:<20} {target_line(name)}" for name in PAPER_RECIPES)
_EPILOG = f"""\
recipes (--config): {', '.join(RECIPES)}; or a path to a .py file defining get_config().
  smoke  bundled ~10-class dataset, 96x96, narrow model, a few minutes on a laptop CPU (default)
  paper  the paper's RMSprop recipe, 32 images per replica, 100 epochs, on GPUs
  tpu    the Cloud TPU reference: batch 1024, bfloat16, EMA, weight decay, ~170 epochs
  gpu    8-GPU recipe with mixed_float16
  finetune  your own photos (--dataset folder:PATH) from Keras' ImageNet weights
  finetune_augmented  finetune plus MixUp: for few photos per class, or unlike the served ones
the paper's rows, each one change from the one above (python -m inception_keras.paper compares):
{_PAPER_ROWS}
every config key can be changed with --set key=value (list them with --help_config), e.g.
  --set image_size=128 --set depth_multiplier=0.5 --set ema_momentum=none
outputs: checkpoints, TensorBoard logs and config.json under --model_dir (default runs/<config>);
the SavedModel under <export_dir>/<model_name>/<version> (a new version each time, never overwritten).
interrupted or killed? rerun the same command: it resumes from the newest checkpoint; a
finished run rerun does only what is missing. Relative paths mean the current directory.
exit status: 0 done, 1 non-finite loss, 2 user mistake, 143 preempted (rerun), 170 a lost
multi-worker peer (restart every worker).
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
    add("--config", help="recipe name or path to a .py config (default: smoke)")
    add("--strategy", help="tpu | mirrored | multi_worker | one_device | cpu (default: the "
                           "recipe's)")
    add("--tpu", help="TPU name for TPUClusterResolver, or 'local' on a TPU VM (default: local)")
    add("--devices", help="mirrored: comma-separated devices, e.g. /gpu:0,/gpu:1 (default: all "
                          "GPUs)")
    add("--cpu_devices", type=int, help="split the CPU into N logical devices (try mirrored "
                                        "without GPUs)")
    add("--dataset", help="imagenet_tfrecord | tfds:NAME | folder:PATH | synthetic | smoke")
    add("--data_dir", help="where the dataset lives")
    add("--model_dir", action="append",
        help="checkpoints, logs and config.json (default: runs/<config>); with --eval_only it "
             "may be repeated: an ensemble of those runs, their probabilities averaged")
    add("--epochs", type=int, help="number of epochs")
    add("--steps_per_epoch", type=int, help="training steps per epoch (default: one pass)")
    add("--batch_size", type=int, help="GLOBAL batch size, over all replicas")
    add("--precision", help="auto | float32 | mixed_bfloat16 | mixed_float16 (default: auto: "
                            "bf16 on TPU, fp16 on GPU, bf16 on CPUs with AVX512_BF16/AMX)")
    add("--export_dir", help="SavedModel root (default: saved_models)")
    add("--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any config key (repeatable), e.g. --set image_size=96")
    add("--export_only", action="store_true",
        help="export the newest checkpoint of the run in --model_dir (its EMA weights if it "
             "has them) as a new version (no training)")
    add("--eval_only", action="store_true",
        help="evaluate the newest checkpoint of the run in --model_dir (or, without a run, "
             "--set init_weights=PATH) on the validation split, every image once; writes "
             "its own record <model_dir>/evaluations/<name>.json (no training)")
    add("--watch", action="store_true",
        help="with --eval_only: evaluate every new checkpoint of the run as it appears, until "
             "the run is finished (or --set watch_timeout=SECONDS without one); results in "
             "<model_dir>/watch_results.json and TensorBoard's 'watch' run")
    add("--help_config", action="store_true", help="list every config key with its default")
    flags = parser.parse_args(argv)
    flags.model_dirs = flags.model_dir or []
    flags.model_dir = flags.model_dirs[0] if flags.model_dirs else None
    return flags


_FLAG_KEYS = {"strategy": "strategy", "tpu": "tpu", "devices": "devices",
              "cpu_devices": "num_cpu_devices", "dataset": "dataset", "data_dir": "data_dir",
              "model_dir": "model_dir", "epochs": "epochs", "steps_per_epoch": "steps_per_epoch",
              "batch_size": "global_batch_size", "precision": "precision",
              "export_dir": "export_dir"}
# What --eval_only/--export_only of a run may not change: the network its checkpoint holds.
_RUN_NETWORK_KEYS = ("dataset", "variant", "depth_multiplier", "min_depth", "include_aux", "stem",
                     "aux_batch_norm", "receptive_field")


def typed_changes(flags):
    """{config key: value} of the named flags the user typed (argparse leaves the others None)."""
    changes = {key: getattr(flags, flag) for flag, key in _FLAG_KEYS.items()
               if getattr(flags, flag) is not None}
    if flags.batch_size is not None and flags.batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {flags.batch_size}")
    return changes


def config_from_flags(flags):
    """Recipe, then the named flags, then --set; paths resolved; validated (no TensorFlow)."""
    config = get_config(flags.config or DEFAULT_RECIPE)
    config = apply_overrides(config.replace(**typed_changes(flags)), flags.set)
    if not config.model_dir:
        config = config.replace(model_dir=os.path.join("runs", config.name))
    return config.with_resolved_paths().validate()


def run_config_from_flags(flags, model_dir):
    """--eval_only/--export_only of the run in `model_dir`: its saved config, changed only by the
    flags the user typed (and --set), never by a recipe's defaults."""
    from configs.base import TrainConfig
    from inception_keras.training.loop import checkpoints

    saved = TrainConfig.from_dict(checkpoints.load_config_dict(model_dir))
    config = apply_overrides(saved.replace(**typed_changes(flags)), flags.set)
    changed = [key for key in _RUN_NETWORK_KEYS if getattr(config, key) != getattr(saved, key)]
    if changed:
        raise ConfigError(f"{model_dir} holds a run: its checkpoint has the network of its "
                          f"config.json, so {', '.join(changed)} cannot change; drop those flags")
    if any(item.split("=", 1)[0].strip() == "init_weights" for item in flags.set):
        raise ConfigError(f"{model_dir} holds a run, whose checkpoint is what gets used: drop "
                          "--set init_weights, or pass a --model_dir without a run")
    return config.replace(model_dir=model_dir).with_resolved_paths().validate()


def main(argv=None):
    flags = parse_flags(sys.argv[1:] if argv is None else argv)
    if flags.help_config:
        print("config keys (set with --set key=value):\n" + describe_fields())
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if flags.export_only and flags.eval_only:
            raise ConfigError("--export_only and --eval_only: pick one")
        if flags.watch and not flags.eval_only:
            raise ConfigError("--watch evaluates a run's checkpoints: use it with --eval_only")
        check_ensemble_flags(flags)
        config = config_from_flags(flags)
        if len(flags.model_dirs) > 1:
            return run_ensemble(flags)
        if flags.eval_only or flags.export_only:
            return run_existing(flags, config)
        from inception_keras.training import entries

        return finish(lambda: entries.train_run(config))
    except ConfigError as error:
        return fail(error, USER_ERROR)


def check_ensemble_flags(flags):
    """Several --model_dir make an ensemble, which only --eval_only (without --watch) scores."""
    count = len(flags.model_dirs)
    if count > 1 and (not flags.eval_only or flags.watch):
        raise ConfigError(f"--model_dir is given {count} times: only --eval_only (without "
                          "--watch) takes several, to evaluate them as an ensemble; give one")


def run_ensemble(flags):
    """--eval_only with several --model_dir: each a training run, evaluated as an ensemble."""
    from inception_keras.paths import resolve
    from inception_keras.training.loop import checkpoints
    from inception_keras.training import entries

    configs = []
    for model_dir in flags.model_dirs:
        model_dir = resolve(model_dir)
        if checkpoints.load_config_dict(model_dir) is None:
            raise ConfigError(f"--eval_only ensemble: {model_dir} has no "
                              f"{checkpoints.CONFIG_FILE}; every --model_dir must be a training "
                              "run")
        configs.append(run_config_from_flags(flags, model_dir))
    return finish(lambda: entries.evaluate_ensemble(configs))


def run_existing(flags, config):
    """--eval_only or --export_only: of the run in --model_dir, or (eval) of init_weights."""
    from inception_keras.training.loop import checkpoints
    from inception_keras.training import entries

    if flags.watch:
        wait_for_run(config.model_dir, config.watch_timeout)
    has_run = checkpoints.load_config_dict(config.model_dir) is not None
    entry = "--eval_only" if flags.eval_only else "--export_only"
    if has_run:
        config = run_config_from_flags(flags, config.model_dir)
    elif flags.export_only or not config.init_weights:
        raise ConfigError(
            f"{entry}: {config.model_dir} has no {checkpoints.CONFIG_FILE}; pass the --model_dir "
            "of a training run" + ("" if flags.export_only else
                                   ", or --set init_weights=PATH with --dataset"))
    if flags.export_only:
        return finish(lambda: entries.export_run(config))
    if flags.watch:
        return finish(lambda: entries.watch_run(config))
    return finish(lambda: entries.evaluate_run(config, from_run=has_run))


def wait_for_run(model_dir, timeout, poll_seconds=2.0):
    """--watch may start before the training job has written its config.json: wait for it."""
    from inception_keras.training.loop import checkpoints

    deadline = time.monotonic() + timeout
    while checkpoints.load_config_dict(model_dir) is None and time.monotonic() < deadline:
        time.sleep(poll_seconds)


def finish(entry):
    """Runs an entry; maps how it ended to the exit status (one line for each kind of end)."""
    from inception_keras.training import errors
    from inception_keras.training.loop import progress

    try:
        entry()
        return 0
    except errors.TrainerError as error:
        return fail(error, error.exit_code)
    except (errors.Preempted, errors.NonFiniteLoss) as ending:
        progress.setup_logging().info(str(ending))
        return ending.exit_code
    except errors.PeerLost as lost:
        return fail(lost, lost.exit_code)


def fail(error, code):
    print(f"error: {error}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
