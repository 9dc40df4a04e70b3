"""The three things a run can be asked to do, each top to bottom: train, evaluate, export.

    train_run(config)       restore or start, train what is missing, evaluate, export
    evaluate_run(config)    a run's newest checkpoint (or `init_weights` without a run), scored
    evaluate_ensemble(configs)  several runs' newest checkpoints, probabilities averaged, scored
    watch_run(config)       every new checkpoint of a run scored as it appears (watcher.py)
    export_run(config)      a run's newest checkpoint, exported as a new SavedModel version

All three restore through `Trainer.restore` and export through `Trainer.export`. A finished run
started again does only what is missing (`run_state.json`): no step trained, the final
evaluation and the export only if they are missing for the trained step. A training run's final
evaluation is `<model_dir>/eval.json`; every other evaluation gets its own record under
`<model_dir>/evaluations/` (reports.write_final), and never changes what a rerun relies on.
They raise `TrainerError`, `Preempted`, `NonFiniteLoss` or `PeerLost`
(inception_keras.training.errors), each with its exit status; `log` receives the lines a person reads.
"""

import contextlib
import time

import tensorflow as tf

from inception_keras import data, paths
from inception_keras.export import ExportError
from inception_keras.export.formats import parse_formats, require_runtimes
from inception_keras.training.loop import checkpoints, progress
from inception_keras.training import ensemble, inputs
from inception_keras.training.records import reports
from inception_keras.training.cluster import workers
from inception_keras.training.loop.actions import (
    Checkpointer, CorruptRecords, KeepBest, ProgressLog, Validator)
from inception_keras.training.errors import Preempted, TrainerError
from inception_keras.training.loop.train_loop import TrainLoop
from inception_keras.training.loop.observe import Histograms, Profiler
from inception_keras.training.loop.preemption import CallPlanner, SigtermWatch
from inception_keras.training.loop.recovery import Recovery
from inception_keras.training.records.run_state import RunRecord
from inception_keras.training.setup import setup_run
from inception_keras.training.step.steps import EvaluationStopped
from inception_keras.training.trainer import Trainer
from inception_keras.training.watcher import Watcher


def default_log(message):
    progress.setup_logging().info(message)


def train_run(config, log=default_log):
    setup = setup_run(config)
    config = setup.config
    with _user_errors(setup.strategy):
        _check_outputs(setup, log)
        datasets = _training_inputs(setup)  # a data mistake fails here, before the model
        log("\n".join(reports.summary_lines(setup)))
        _save_or_check_config(setup)
        trainer = Trainer(setup)
        log(reports.network_line(trainer.model, config.image_size))
        restored = trainer.restore()
        workers.check_restored_steps_agree(setup.strategy, trainer.step)
        record = RunRecord(config.model_dir, setup.is_chief)
        _start_weights(trainer, restored, log)
        summaries = _summaries(setup, trainer.step)
        inputs.report_folder_problems(config, log)
        with SigtermWatch(setup.strategy) as watch:
            validation = _train(setup, trainer, datasets, watch, record, summaries, log)
            _finish(setup, trainer, watch, record, summaries, validation, log)


def evaluate_run(config, *, from_run, log=default_log):
    """Scores the run in `config.model_dir` (`from_run`) or `config.init_weights`."""
    setup = setup_run(config, for_training=False)
    with _user_errors(setup.strategy):
        _evaluate(setup, from_run, log)


def _evaluate(setup, from_run, log):
    config = setup.config
    source = config.model_dir if from_run else config.init_weights
    excluded = inputs.excluded_images(config, log)
    log(f"evaluating {source} on {config.dataset}'s validation split "
        f"({_images_text(setup.info, excluded)}), {config.eval_crops} crop(s), "
        f"{type(setup.strategy).__name__} x{setup.replicas}, {setup.policy}")
    if from_run:
        trainer, checkpoint = restored_trainer(setup, "--eval_only", log)
        what = {"checkpoint": checkpoint}
    else:
        trainer = Trainer(setup)
        for line in trainer.load_init_weights(evaluating=True):
            log(line)
        what = {"init_weights": config.init_weights}
    results = trainer.evaluate(_evaluation_input(setup))
    name = reports.record_name(config, step=trainer.step if from_run else None,
                               excluded=excluded)
    reports.write_final(results, config=config, class_names=setup.info.class_names,
                        step=trainer.step, weights=trainer.weights_name,
                        summaries=progress.Summaries(_tensorboard_dir(config)), log=log,
                        out_dir=config.model_dir, kind="eval_only", name=name,
                        extra={"excluded": excluded, **what})


def evaluate_ensemble(configs, log=default_log):
    """--eval_only with several --model_dir: each run's newest checkpoint scores every
    validation image once; their probabilities are averaged and scored (ensemble.py). The
    record goes under the first member's model_dir."""
    total, labels, members, setups = None, None, [], []
    for config in configs:
        setup = setup_run(config, for_training=False)
        setups.append(setup)
        with _user_errors(setup.strategy):
            ensemble.check_members_agree([s.config for s in setups],
                                         [s.info.class_names for s in setups])
            trainer, checkpoint = restored_trainer(setup, "--eval_only", log)
            probabilities, member_labels = trainer.probabilities(
                inputs.ensemble_member_input(setup))
        if labels is None:
            total, labels = probabilities.astype("float64"), member_labels
        else:
            ensemble.check_same_labels(member_labels, labels, config.model_dir)
            total += probabilities
        members.append(ensemble.member_record(setup.config, trainer.step, checkpoint,
                                              trainer.weights_name))
        log(f"member {len(members)} of {len(configs)}: {config.model_dir} step {trainer.step} "
            f"({trainer.weights_name}) scored {len(member_labels)} images")
    first = setups[0]
    excluded = inputs.excluded_images(first.config, log)
    results = ensemble.score(total / len(configs), labels, first.info.num_classes)
    reports.write_final(results, config=first.config, class_names=first.info.class_names,
                        step=None, weights=f"ensemble of {len(configs)}",
                        summaries=progress.Summaries(None), log=log,
                        out_dir=first.config.model_dir, kind="ensemble",
                        name=reports.record_name(first.config, members=len(configs),
                                                 excluded=excluded),
                        extra={"excluded": excluded, "members": members})


def watch_run(config, log=default_log):
    """--eval_only --watch: evaluates each new checkpoint of the run in `config.model_dir`
    until the run is finished (see watcher.py)."""
    setup = setup_run(config, for_training=False)
    with _user_errors(setup.strategy):
        trainer = Trainer(setup)
        log(f"watching {trainer.checkpoint_dir}: each new checkpoint is scored on "
            f"{config.dataset}'s validation split ({trainer.weights_name}), until the run is "
            f"finished or {config.watch_timeout:g} s pass without a new one")
        Watcher(trainer, _evaluation_input(setup), log).run(config.watch_timeout)


def export_run(config, log=default_log):
    """A new export version of the newest checkpoint of the run in `config.model_dir`."""
    setup = setup_run(config, export_only=True)
    with _user_errors(setup.strategy):
        paths.check_writable_dir(setup.config.export_dir, "--export_dir")
        require_runtimes(parse_formats(config.export_formats))
        trainer, _ = restored_trainer(setup, "--export_only", log)
        _export(trainer, RunRecord(setup.config.model_dir), log)


def restored_trainer(setup, entry, log):
    """(the `Trainer` of a run holding its newest checkpoint, that checkpoint's path);
    TrainerError if it has none. What --export_only, --eval_only and `python -m
    inception_keras.export --model RUN` use."""
    trainer = Trainer(setup)
    return trainer, _restore_required(trainer, entry, log)


# ----------------------------------------------------------------------------------- training


def _training_inputs(setup):
    """(training input, validation input) of the run."""
    return (inputs.distributed_dataset(setup, split="train", is_training=True),
            inputs.distributed_dataset(setup, split="validation", is_training=False))


def _train(setup, trainer, datasets, watch, record, summaries, log):
    """Trains from the restored step to the last; the last epoch's validation (or None)."""
    config = setup.config
    total = config.epochs * config.steps_per_epoch
    training_input, validation_input = datasets
    validator = Validator(trainer, validation_input, watch=watch, record=record,
                          summaries=summaries, log=log)
    with workers.checkpoint_write_dir(trainer.checkpoint_dir, setup.is_chief) as write_dir:
        manager = checkpoints.make_manager(trainer.checkpoint, write_dir, config.keep_checkpoints)
        keep_best = _keep_best(trainer, write_dir, record, log)
        validation = validator.catch_up(trainer.step, config.steps_per_epoch)
        if validation is not None and keep_best is not None:
            keep_best.consider(trainer.step, validation)
        if trainer.step >= total:
            log(f"training already complete ({trainer.step} steps)")
            return validation
        checkpointer = Checkpointer(trainer, manager)
        observers = _observers(setup, trainer, summaries, log)
        actions = [checkpointer, validator, *([keep_best] if keep_best else []),
                   CorruptRecords(log), ProgressLog(trainer, summaries, log, trainer.step),
                   *observers]
        loop = TrainLoop(trainer, training_input, actions=actions, checkpointer=checkpointer,
                         watch=watch, log=log,
                         planner=CallPlanner(config.steps_per_execution, config.max_call_seconds),
                         recovery=_recovery(setup, trainer, record, summaries, log))
        started, first = time.perf_counter(), trainer.step
        try:
            validation = loop.run()
        finally:
            for observer in observers:
                if isinstance(observer, Profiler):
                    observer.stop(trainer.step)
    log(f"training done: {total - first} steps in {time.perf_counter() - started:.0f} s")
    record.update(trained_step=trainer.step)
    return validation


def _recovery(setup, trainer, record, summaries, log):
    if setup.config.on_nonfinite != "recover":
        return None
    return Recovery(trainer, record, summaries, log, limit=setup.config.max_recoveries,
                    strategy=setup.strategy)


def _keep_best(trainer, write_dir, record, log):
    if trainer.config.keep_best == "none":
        return None
    manager = checkpoints.make_manager(trainer.checkpoint, f"{write_dir}/best", 1,
                                       checkpoint_name="best")
    return KeepBest(trainer, manager, record, log)


def _observers(setup, trainer, summaries, log):
    """The profiler and histogram actions the config asks for (the chief's)."""
    config, observers = setup.config, []
    if config.profile_steps and setup.is_chief:  # "A,B", validated by the config
        first, last = (int(step) for step in config.profile_steps.split(","))
        observers.append(Profiler(_tensorboard_dir(config), first, last, log))
    if config.histogram_every and setup.is_chief:
        observers.append(Histograms(trainer, summaries, config.histogram_every))
    return observers


def _select_for_export(setup, trainer, record, validation, log):
    """The checkpoint the final evaluation scores and the export writes, and why: the last one,
    or with `export=best` the best validation's (restored here). Returns (validation results
    still valid for it or None, {"checkpoint": ..., "why": ...})."""
    config, best, last = setup.config, record.state.best, record.state.last_validation
    if config.export != "best" or best is None:
        why = "export=last: the end of training" if config.export == "last" else \
            "export=best, but no validation was kept: the end of training"
        return validation, {"checkpoint": "last", "why": why}
    last_text = f"; the last, step {last['step']}, had {last['val_top1']:.4f}" if last else ""
    why = (f"export=best: the highest val_top1 of the run's validations, {best['val_top1']:.4f} "
           f"at step {best['step']}{last_text}")
    if best["step"] != trainer.step:
        trainer.restore_path(best["path"])
        validation = None
    log(f"final evaluation and export use the best checkpoint, step {best['step']} ({why})")
    return validation, {"checkpoint": "best", "why": why}


def _finish(setup, trainer, watch, record, summaries, validation, log):
    """The final evaluation and the export of the chosen checkpoint, each unless already done."""
    validation, selection = _select_for_export(setup, trainer, record, validation, log)
    config, step = setup.config, trainer.step
    if record.state.evaluated_at(step, config.eval_crops, config.eval_exclude):
        log(f"the final evaluation of step {step} is already in "
            f"{record.state.evaluation_path(config.model_dir)}")
    else:
        if validation is None or config.eval_crops != 1:
            validation = _preemptible_evaluation(trainer, _evaluation_input(setup), watch, step)
        if setup.is_chief:
            _, path = reports.write_final(
                validation, config=config, class_names=setup.info.class_names, step=step,
                weights=trainer.weights_name, summaries=summaries, log=log,
                out_dir=config.model_dir, selection=selection,
                extra={"excluded": inputs.excluded_images(config, log)})
        else:
            log(reports.final_line(validation, trainer.weights_name, config.eval_crops))
            path = reports.record_paths(config.model_dir, "final", None)[0]
        exclude = {"eval_exclude": config.eval_exclude} if config.eval_exclude else {}
        record.update(evaluated={"step": step, "eval_crops": config.eval_crops, "path": path,
                                 **exclude})
    if not setup.is_chief:
        log(f"{setup.task_type} {setup.task_id}: done (the chief exports)")
    elif record.state.exported_at(step):
        log(f"step {step} is already exported to {record.state.exported['path']}; nothing left "
            "to do (--export_only writes another version)")
    else:
        path = _export(trainer, record, log)
        reports.note_export(config.model_dir, path, step)


def _preemptible_evaluation(trainer, dataset, watch, step):
    try:
        return trainer.evaluate(dataset, should_stop=watch.requested)
    except EvaluationStopped:
        raise Preempted(f"SIGTERM during the final evaluation: training is complete and saved "
                        f"(step {step}); rerun the same command to evaluate and export") from None


def _export(trainer, record, log):
    written = trainer.export(log=log)
    if "formats" in written:
        log(f"exported the LiteRT/ONNX files to {written['formats']}")
    path = written.get("savedmodel", written.get("formats"))
    if "savedmodel" in written:
        log(f"exported the model to {path}")
    record.update(exported={"step": trainer.step, "path": path})
    return path


# ------------------------------------------------------------------------------------- set-up


def _check_outputs(setup, log):
    """Every folder a run writes is writable, and every export format's converter and runtime
    installed, before the first step (TrainerError naming what is missing)."""
    config = setup.config
    paths.check_writable_dir(config.model_dir, "--model_dir")
    if setup.is_chief:
        paths.check_writable_dir(config.export_dir, "--export_dir")
        require_runtimes(parse_formats(config.export_formats))
    if isinstance(setup.strategy, tf.distribute.TPUStrategy) and not paths.is_url(
            config.model_dir):
        log(f"note: --model_dir {config.model_dir} is this VM's disk, which a preempted TPU VM "
            "loses: put checkpoints on gs://BUCKET/... to resume after a preemption")


def _save_or_check_config(setup):
    """A run that exists must have the same model, data and batch; a new one records its config."""
    config = setup.config
    saved = checkpoints.load_config_dict(config.model_dir)
    if saved is not None:
        try:
            checkpoints.check_resume_compatible(saved, config)
        except checkpoints.ResumeConflict as error:
            raise TrainerError(str(error)) from None
    if setup.is_chief:
        checkpoints.save_config(config, config.model_dir)


def _start_weights(trainer, restored, log):
    if restored:
        step, per_epoch = trainer.step, trainer.config.steps_per_epoch
        epoch, in_epoch = divmod(step, per_epoch)
        log(f"resumed from epoch {epoch + 1 if in_epoch else epoch} step "
            f"{in_epoch if in_epoch else per_epoch} (global step {step}) of {restored}")
    elif trainer.config.init_weights:  # a fresh fine-tune; a resumed one keeps its checkpoint
        for line in trainer.load_init_weights():
            log(line)


def _restore_required(trainer, entry, log):
    restored = trainer.restore(partial=True)
    if restored is None:
        raise TrainerError(f"{entry}: no checkpoint in {trainer.checkpoint_dir}; train first")
    log(f"restored {restored} (step {trainer.step})")
    return restored


def _tensorboard_dir(config):
    return f"{config.model_dir.rstrip('/')}/tensorboard"


def _summaries(setup, step):
    """TensorBoard runs of the chief (a no-op elsewhere). A fresh run (step 0) records its
    config and a grid of its training inputs once: not a resumed run, not a rerun."""
    config = setup.config
    summaries = progress.Summaries(_tensorboard_dir(config) if setup.is_chief else None)
    if setup.is_chief and step == 0:
        images = inputs.sample_training_images(setup) if config.image_summaries else None
        summaries.run_start(config, images, reports.augmentation_text(config), step)
    return summaries


def _images_text(info, excluded):
    if info.num_eval_examples is None:
        return "all its images" + (f" but {excluded} excluded" if excluded else "")
    left_out = f", {excluded} of {info.num_eval_examples} excluded" if excluded else ""
    return f"{info.num_eval_examples - excluded} images{left_out}"


def _evaluation_input(setup):
    single = inputs.distributed_dataset(setup, split="validation", is_training=False)
    return inputs.evaluation_dataset(setup, single)


@contextlib.contextmanager
def _user_errors(strategy):
    """Mistakes found by the library's parts become `TrainerError` (one line); a lost
    multi-worker peer becomes `PeerLost` (one line, retryable exit status)."""
    try:
        yield
    except (data.DataError, ExportError, paths.PathError) as error:
        raise TrainerError(str(error)) from None
    except tf.errors.OpError as error:
        lost = workers.peer_lost(error, strategy)
        if lost is None:
            raise
        raise lost from None
