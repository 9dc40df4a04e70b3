"""`Trainer`: one run's model and everything that changes it, in the spirit of Orbit's trainer.

    setup = setup_run(config)                   # strategy, precision, dataset, resolved config
    trainer = Trainer(setup)                    # model, optimizer, EMA, loss scale, step functions
    trainer.restore()                           # the newest readable checkpoint, or None
    stats = trainer.train(iterator, 10)         # 10 steps in one compiled call
    results = trainer.evaluate(validation)      # with the EMA weights when the run has EMA
    paths = trainer.export()                    # {"savedmodel": the new version, "formats": ...}

The trainer owns the compiled step functions (`inception_keras.training.step.steps`) and rebuilds
every one of them in one place (`set_trainable`). The training loop and its policies (checkpoint,
validate, log, preempt) are in `inception_keras.training.loop.train_loop`; the three entries (train,
evaluate, export) share `restore`, `evaluate` and `export` here.
"""

import keras
import tensorflow as tf

from inception_keras.export import ExportError
from inception_keras.export.formats import dataset_format_data, export_all, parse_formats
from inception_keras.models.inception_v3 import build_inception_v3
from inception_keras.training.loop import checkpoints
from inception_keras.training.step import optimizers, regularization
from inception_keras.training import transfer
from inception_keras.training.step.ema import ExponentialMovingAverage, ema_weights
from inception_keras.training.errors import TrainerError
from inception_keras.training.step.fused_batch_norm import with_training_batch_norm
from inception_keras.training.step.loss_scale import DynamicLossScale
from inception_keras.training.loop.preemption import CallPlanner
from inception_keras.training.step.replica_statistics import ReplicaStatistics, batch_norm_statistics
from inception_keras.training.step.schedules import make_schedule
from inception_keras.training.step.steps import Counters, Steps
from inception_keras.training.step.updates import (
    LocalUpdate, ParameterGroup, head_variables, no_decay_variables)


def build_model(config, num_classes, *, logits=False):
    """The network of `config` under the current dtype policy (TrainerError if it cannot be);
    its classifiers return logits with `logits=True` (training), else probabilities."""
    try:
        return build_inception_v3(
            weights=None, input_shape=(config.image_size, config.image_size, 3),
            classes=num_classes, include_aux=config.include_aux,
            dropout_rate=config.dropout_rate, variant=config.variant,
            depth_multiplier=config.depth_multiplier, min_depth=config.min_depth,
            batch_norm_momentum=config.batch_norm_momentum, stem=config.stem,
            aux_batch_norm=config.aux_batch_norm, receptive_field=config.receptive_field,
            classifier_activation=None if logits else "softmax")
    except ValueError as error:
        raise TrainerError(f"cannot build the model: {error}") from None


class Trainer:
    """The model, optimizer, EMA, loss scale, step counters and step functions of one run."""

    def __init__(self, setup):
        self.setup, self.config, self.strategy = setup, setup.config, setup.strategy
        config, info = setup.config, setup.info
        if config.jit_compile and setup.replicas > 1 and \
                not isinstance(setup.strategy, tf.distribute.TPUStrategy):
            raise TrainerError("jit_compile=true compiles the step of one replica with XLA: use "
                               "it with one device per process (TPUs always compile)")
        with setup.strategy.scope():
            self.model = with_training_batch_norm(  # same weights as the plain model's
                build_model(config, info.num_classes, logits=True),
                fused=config.fused_batch_norm and not config.sync_batch_norm,
                synchronized=config.sync_batch_norm)
            regularization.add_kernel_weight_decay(self.model, config.weight_decay)
            self.counters = Counters()
            self.schedule, self.schedule_text = make_schedule(
                config, global_batch_size=config.global_batch_size,
                steps_per_epoch=config.steps_per_epoch, num_train_examples=info.num_train_examples)
            self.learning_rate = lambda: self.schedule(self.counters.step)  # the step's rate
            self.update = self._update(config)
            self.optimizer = self.update.groups[0].optimizer
            self.ema = (ExponentialMovingAverage(self.model, config.ema_momentum)
                        if config.ema_momentum is not None else None)
            self.loss_scale = DynamicLossScale() if setup.policy == "mixed_float16" else None
            self.steps = Steps(
                self.model, self.update, setup.strategy,
                counters=self.counters, global_batch_size=config.global_batch_size,
                num_classes=info.num_classes, label_smoothing=config.label_smoothing,
                aux_weight=config.aux_loss_weight, clipnorm=config.global_clipnorm,
                loss_scale=self.loss_scale, ema=self.ema, jit_compile=config.jit_compile,
                gradient_norms=config.histogram_every > 0)
        statistics = batch_norm_statistics(self.model)
        if self.ema is not None:
            statistics += self.ema.averages_of(statistics)
        self.replica_statistics = ReplicaStatistics(setup.strategy, statistics)
        self.checkpoint = checkpoints.make_checkpoint(
            model=self.model, counters=self.counters, ema=self.ema, loss_scale=self.loss_scale,
            **self.update.checkpoint_objects())
        self.trainable = "all"  # a new model trains every layer
        # evaluation calls are bounded in time like training calls (preemption.CallPlanner)
        self.eval_planner = CallPlanner(config.steps_per_execution, config.max_call_seconds)
        self.on_retrace = [self.eval_planner.retraced]  # told when step functions are rebuilt

    def _update(self, config):
        """The optimizer(s), built before any restore, and how they update: one parameter group,
        or the classifiers at `head_lr_multiplier` x the rate with an optimizer of their own."""
        variables = self.model.trainable_variables
        head = {id(v) for v in head_variables(self.model)}
        multiplier = config.head_lr_multiplier
        if multiplier == 1 or not head:
            split = [("all", self.learning_rate, variables)]
        else:
            head_rate = lambda: self.learning_rate() * multiplier  # noqa: E731
            split = [("backbone", self.learning_rate, [v for v in variables if id(v) not in head]),
                     ("head", head_rate, [v for v in variables if id(v) in head])]
        groups = []
        for name, rate, members in split:
            optimizer = optimizers.make_optimizer(config, rate)
            optimizer.build(members)  # slots exist before a restore
            groups.append(ParameterGroup(name, optimizer, rate, members))
        no_decay = [g.strip() for g in config.no_decay_on.split(",")]
        return LocalUpdate(groups, decoupled_weight_decay=config.decoupled_decay,
                           no_decay=no_decay_variables(self.model, no_decay))

    # ------------------------------------------------------------------------------ state
    @property
    def step(self):
        """Training steps taken (the trainer's own counter, restored with a checkpoint)."""
        return int(self.counters.step.numpy())

    @property
    def checkpoint_dir(self):
        return f"{self.config.model_dir.rstrip('/')}/{checkpoints.CHECKPOINT_SUBDIR}"

    @property
    def weights_name(self):
        """What evaluations and exports use, in words."""
        return "EMA weights" if self.ema is not None else "weights"

    def learning_rate_at(self, step):
        """The rate of step `step` (0-based: the first step is 0) of the schedule."""
        return float(self.schedule(step))

    def agree_on_statistics(self):
        """Every replica's batch-norm statistics := their mean (before they are read)."""
        self.replica_statistics.agree()

    def restore(self, *, partial=False):
        """Restores the newest readable checkpoint of the run's model_dir; its path, or None when
        the run has none. `partial`: only what evaluation and export need (no optimizer)."""
        try:
            return checkpoints.restore_latest(self.checkpoint, self.checkpoint_dir,
                                              expect_partial=partial)
        except checkpoints.CheckpointError as error:
            raise TrainerError(str(error)) from None

    def restore_path(self, path):
        """Restores checkpoint `path` (what evaluation and export need: model, EMA, counters);
        TrainerError with the real reason when it cannot be read (e.g. deleted meanwhile)."""
        try:
            self.checkpoint.restore(path).expect_partial()
        except (tf.errors.OpError, ValueError, AssertionError) as error:
            reason = (getattr(error, "message", None) or str(error)).strip().splitlines()
            raise TrainerError(f"cannot read checkpoint {path}: {type(error).__name__}: "
                               f"{reason[0] if reason else ''}") from None
        return path

    def load_init_weights(self, *, evaluating=False):
        """Loads `init_weights` (the start of a fresh run, or what an evaluation without a run
        scores); returns the report's lines. An evaluation refuses a classifier of another size."""
        config = self.config
        # Into the network with Keras' own layers, then layer by layer into the trainer's: a
        # `.weights.h5` file addresses its variables by layer class, and the trainer's fused
        # batch norm is another class, whose variables Keras would not find in the file.
        plain = build_model(config, self.setup.info.num_classes, logits=True)
        try:
            report = transfer.load_init_weights(plain, config.init_weights,
                                                include_aux=config.include_aux)
        except ValueError as error:
            hint = (" (--eval_only builds the network of --config: pass the recipe the weights "
                    "were trained with, e.g. --config finetune for Keras' ImageNet file)"
                    if evaluating else "")
            raise TrainerError(f"{error}{hint}") from None
        if evaluating and report.kept_fresh:
            raise TrainerError(
                f"--eval_only: {config.init_weights} has another number of classes than "
                f"{config.dataset} ({'; '.join(report.lines())}): scoring a fresh classifier "
                "means nothing; evaluate on the dataset the weights know")
        for layer in plain.layers:
            if layer.weights:
                self.model.get_layer(layer.name).set_weights(layer.get_weights())
        if self.ema is not None:
            self.ema.reset()  # average the loaded weights, not the random ones
        return report.lines()

    # ------------------------------------------------------------------------------ steps
    def set_trainable(self, spec):
        """Freezes the layers before `spec` (all | head | a layer name; frozen batch norm runs
        in inference mode) and rebuilds every compiled function; returns the summary line."""
        try:
            summary = transfer.set_trainable_from(self.model, spec)
        except ValueError as error:
            raise TrainerError(f"trainable_from: {error}") from None
        self.steps.retrace()
        self.trainable = spec
        for listener in self.on_retrace:
            listener()
        return str(summary)

    def train(self, iterator, num_steps):
        """Runs `num_steps` training steps in one compiled call; the summed loss (one value per
        step), correct top-1 predictions, examples and the main head's plain cross-entropy."""
        return self.steps.train(iterator, num_steps)

    def evaluate(self, dataset, *, should_stop=None):
        """Every image of a masked evaluation input once (or the first `eval_steps` batches),
        with the EMA weights when the run has EMA."""
        config = self.config
        self.agree_on_statistics()
        with ema_weights(self.ema):
            return self.steps.evaluate(dataset, max_steps=config.eval_steps or None,
                                       steps_per_call=config.steps_per_execution,
                                       planner=self.eval_planner, should_stop=should_stop)

    def probabilities(self, dataset):
        """Class probabilities and ids of every image of a masked, non-distributed evaluation
        input (or the first `eval_steps` batches), with the EMA weights when the run has EMA."""
        self.agree_on_statistics()
        with ema_weights(self.ema):
            return self.steps.probabilities(dataset, max_steps=self.config.eval_steps or None)

    # ------------------------------------------------------------------------------ export
    def serving_model(self):
        """A float32 copy of the model holding the weights evaluations use (EMA if any)."""
        policy = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy("float32")
        try:
            serving = build_model(self.config, self.setup.info.num_classes)
        finally:
            keras.mixed_precision.set_dtype_policy(policy)
        with ema_weights(self.ema):
            serving.set_weights(self.model.get_weights())
        return serving

    def export(self, log=print):
        """The `export_formats` of `serving_model()` under one new version number (the
        SavedModel in `export_dir/<model_name>/`, LiteRT/ONNX files in
        `export_dir/<model_name>_formats/`, checked against it on the run's validation images);
        {"savedmodel": path, "formats": path} of what was written."""
        config, info = self.config, self.setup.info
        formats = parse_formats(config.export_formats)
        try:
            return export_all(
                self.serving_model(), config.export_dir, model_name=config.model_name,
                formats=formats, class_names=list(info.class_names),
                image_size=config.image_size, int8_io=config.int8_io, log=log,
                min_agreement_float=config.min_agreement_float,
                min_agreement_int8=config.min_agreement_int8,
                data=lambda: dataset_format_data(config.dataset, config.data_dir,
                                                 config.image_size),
                source={"model_dir": config.model_dir, "step": self.step,
                        "weights": self.weights_name})
        except ExportError as error:
            raise TrainerError(
                f"export failed ({error}); the checkpoints in {config.model_dir} are kept: fix it "
                f"and run --export_only --model_dir {config.model_dir}") from None
