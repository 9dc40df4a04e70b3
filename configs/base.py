"""`TrainConfig`: every setting of the ImageNet trainer, as plain data.

A recipe (`configs/paper.py`, `tpu.py`, `gpu.py`, `smoke.py`) is one function `get_config()` that
returns a `TrainConfig`. Nothing here imports TensorFlow: the trainer reads the config, the config
reads nothing. Numbers that depend on the run (the learning rate scaled by the global batch, the
warm-up in steps) are worked out by the trainer from the fields below (see
`inception_keras/training/step/schedules.py`), with the rule written beside them.

The optimizer, learning-rate and augmentation defaults below are neutral (Keras' own constants,
no decay, no warm-up, no clipping, no weight decay, no colour distortion) and the learning rate
has none (it must be set): a recipe states every one of those knobs itself, so its numbers live
in its own file only.
"""

import dataclasses
import difflib
import json
import typing
from typing import Optional

from inception_keras.choices import (  # TF-free
    AUGMENT_POLICIES, COLOR_DISTORTIONS, EXPORT_FORMATS, RECEPTIVE_FIELDS, STEMS, STRATEGIES,
    WARMUPS)
from inception_keras.paths import resolve  # TF-free

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("rmsprop", "adam", "adamw", "sgd")
# adamw's decoupled decay when the config leaves it unset: Keras' `keras.optimizers.AdamW`
# default `weight_decay=0.004` (the same `w -= lr * decay * w` step; PyTorch's AdamW uses 0.01)
ADAMW_DEFAULT_DECAY = 0.004
LR_SCHEDULES = ("exponential", "cosine")
NO_DECAY_GROUPS = ("bn", "bias")  # what no_decay_on may name (comma-separated), or "none"
KEEP_BEST = ("none", "val_top1")
ON_NONFINITE = ("stop", "recover")
EXPORT_CHOICES = ("last", "best")


class ConfigError(ValueError):
    """A user mistake in a recipe name, a `--set key=value`, or a config value (exit code 2)."""


@dataclasses.dataclass
class TrainConfig:
    """All knobs of `python -m trainers.imagenet`; `--set key=value` reaches every field."""

    name: str = "custom"

    # --- data (see inception_keras.data.make_input_fn) ---
    dataset: str = "imagenet_tfrecord"  # imagenet_tfrecord | tfds:NAME | folder:PATH | synthetic | smoke
    data_dir: Optional[str] = None  # where the dataset lives (TFRecords, TFDS dir, ...)
    image_size: int = 299
    color_distortion: str = "none"  # none | slim_fast | tpu_fast (inception_keras.data.preprocessing)
    augment: str = "none"  # none | randaugment | augmix (inception_keras/data/augment.py)
    augment_magnitude: float = 9.0  # timm's 0-10 scale (rand-m9: 9); Keras' factor = this / 10
    augment_layers: int = 2  # RandAugment: ops per image (timm's n)
    random_erasing: float = 0.0  # probability per image of erasing a rectangle (timm's reprob)
    mixup_alpha: float = 0.0  # MixUp's Beta(alpha, alpha) (0: off); labels become soft targets
    cutmix_alpha: float = 0.0  # CutMix's Beta(alpha, alpha) (0: off)
    mix_switch_prob: float = 0.5  # both on: the chance a batch uses CutMix instead of MixUp
    mix_prob: float = 1.0  # the chance a batch is mixed at all
    cache_dir: Optional[str] = None  # tf.data cache for decoded eval images (None: no cache)
    deterministic: bool = False  # deterministic tf.data order (slower); for tests and debugging
    seed: Optional[int] = None  # data and weight-initialisation seed (None: random)

    # --- model (keyword arguments of inception_keras.build_inception_v3) ---
    variant: str = "canonical"
    depth_multiplier: float = 1.0
    min_depth: int = 16
    dropout_rate: Optional[float] = None  # None: the variant's own (0.2 canonical)
    include_aux: bool = True
    batch_norm_momentum: Optional[float] = None  # None: the variant's own default
    stem: str = "factorized"  # factorized (v3's three 3x3 convs) | 7x7 (the paper's v2 baseline)
    aux_batch_norm: bool = True  # batch norm on the aux head's fully connected layer (BN-aux)
    receptive_field: int = 299  # 299 | 151 | 79: the paper's Table 2 networks; 151 and 79 need
    #                             image_size equal to it (299 takes any image_size)

    # --- transfer learning (inception_keras/training/transfer.py) ---
    init_weights: Optional[str] = None  # imagenet | a .h5/.weights.h5 file | a run's model_dir
    trainable_from: str = "all"  # all | head | a layer name: it and the layers after it train
    head_epochs: int = 0  # first train only the classifiers for this many epochs, then unfreeze

    # --- batch: exactly one of the two is used; global wins when > 0 ---
    global_batch_size: int = 0  # images per step over all replicas (--batch_size)
    per_replica_batch_size: int = 32  # used when global_batch_size == 0

    # --- optimizer: neutral defaults (Keras' own, nothing added); every recipe sets each one ---
    optimizer: str = "sgd"  # rmsprop | adam | adamw | sgd (adamw: Adam + decoupled decay)
    base_learning_rate: float = 0.0  # required (> 0): no default rate, every recipe sets it
    lr_reference_batch_size: int = 0  # > 0: lr = base_learning_rate * global_batch / this
    momentum: float = 0.0  # RMSprop and SGD momentum
    rmsprop_rho: float = 0.9  # RMSprop decay of the squared-gradient average
    rmsprop_initial_mean_square: float = 0.0  # RMSprop mean square at step 0: 0 Keras, 1 TF-1
    epsilon: float = 1e-7  # RMSprop/Adam epsilon (Keras' default; TF-1 RMSprop recipes use 1.0)
    global_clipnorm: Optional[float] = None  # clip the all-reduced gradient's global norm (None: off)
    weight_decay: float = 0.0  # L2 on conv/dense kernels only: loss += wd * sum(w^2) / 2
    decoupled_weight_decay: Optional[float] = None  # w -= lr * this * w each step (AdamW /
    #   SGDW), any optimizer; None: ADAMW_DEFAULT_DECAY with adamw, else 0 (off); 0 is off
    no_decay_on: str = "bn,bias"  # bn, bias (comma-separated) or none: not decoupled-decayed
    head_lr_multiplier: float = 1.0  # the classifiers' rate x this (their own optimizer when != 1)

    # --- learning rate (inception_keras/training/step/schedules.py); neutral: constant, no warm-up ---
    lr_schedule: str = "exponential"  # exponential (decay_rate every decay_epochs) | cosine (to
    #                                   lr_floor_fraction x peak at the last step)
    decay_rate: float = 1.0  # lr x decay_rate every decay_epochs, counted from step 0
    decay_epochs: float = 1.0
    staircase: bool = True  # False: smooth decay_rate ** (step / decay_steps)
    lr_floor_fraction: float = 0.0  # lr never below this x the peak rate (0: no floor)
    warmup: str = "none"  # none | linear | tpu_reference
    warmup_epochs: float = 0.0  # linear: ramp length; tpu_reference: ramp epochs (reference: 7)
    cold_epochs: float = 0.0  # tpu_reference only: epochs at 0.1x before the ramp (reference: 2)

    # --- loss ---
    label_smoothing: float = 0.1
    aux_loss_weight: float = 0.4

    # --- weight averaging for evaluation and export ---
    ema_momentum: Optional[float] = None  # e.g. 0.9999; None: no EMA

    # --- execution ---
    strategy: str = "mirrored"  # tpu | mirrored | multi_worker | one_device | cpu
    precision: str = "auto"  # auto | float32 | mixed_bfloat16 | mixed_float16
    tpu: str = "local"  # TPU name for TPUClusterResolver ("local" on a TPU VM)
    devices: Optional[str] = None  # mirrored: comma-separated devices (default: all GPUs)
    num_cpu_devices: int = 0  # > 1: split the CPU into N logical devices (testing mirrored)
    steps_per_execution: int = 1  # steps per tf.function call at most (TPU: ~100)
    max_call_seconds: float = 10.0  # ... and no more than fit in this many seconds, so that a
    #                                 SIGTERM is answered within a preemptible VM's ~30 s grace
    jit_compile: bool = False  # XLA-compile the replica's train and eval steps (one device per
    #                            process; TPUs always compile)
    fused_batch_norm: bool = True  # batch norm via TF's fused kernel (same weights and maths)
    sync_batch_norm: bool = False  # normalise with the moments of the GLOBAL batch (one
    #                                all-reduce per BN layer per step), for small per-replica batches

    # --- length ---
    epochs: int = 100
    steps_per_epoch: int = 0  # 0: num_train_examples // global batch
    eval_steps: int = 0  # 0: the whole validation split
    eval_every_epochs: int = 1  # 0: evaluate only at the end
    eval_crops: int = 1  # final/--eval_only evaluation: 1 central crop, 10 (corners+centre,
    #                      flipped), 12 (centre square's 6 crops, flipped) or 144 (the paper's
    #                      4 scales x 3 squares x 6 crops x 2 flips); see data/multicrop.py
    eval_exclude: Optional[str] = None  # a file of validation images to leave out of every
    #                      evaluation, one file name or 1-based ImageNet validation number a line
    #                      (e.g. the ILSVRC-2014 blacklist); see data/exclusion.py

    # --- outputs ---
    model_dir: Optional[str] = None  # checkpoints, TensorBoard, config.json (None: runs/<name>)
    export_dir: str = "saved_models"  # SavedModel versions go to <export_dir>/<model_name>/<N>
    model_name: str = "inception_v3"
    export_formats: str = "savedmodel"  # comma-separated: savedmodel, litert, litert_float16,
    #                                     litert_int8, onnx (README "Deploy")
    int8_io: bool = False  # litert_int8 takes and returns int8 instead of float32
    min_agreement_float: float = 0.995  # least top-1 agreement with the Keras model of the
    min_agreement_int8: float = 0.97    # float / int8 files for them to be published
    checkpoint_every_steps: int = 0  # also save every N steps (0: at the end of each epoch only)
    keep_checkpoints: int = 3
    log_every_steps: int = 100  # progress line and TensorBoard scalars every N steps
    image_summaries: bool = True  # a grid of augmented training images in TensorBoard
    keep_best: str = "none"  # val_top1: also keep the checkpoint of the best validation
    export: str = "last"  # which checkpoint the final evaluation and export use: last | best
    watch_timeout: float = 3600.0  # --eval_only --watch: give up after this long without news
    profile_steps: str = ""  # "A,B": a TensorBoard profiler trace of steps A..B (1-based)
    histogram_every: int = 0  # weight and gradient-norm histograms every N steps (0: off)

    # --- a non-finite loss (inception_keras/training/loop/recovery.py) ---
    on_nonfinite: str = "stop"  # stop (exit 1) | recover: restore the newest good checkpoint,
    #                             skip the failed batches and go on
    max_recoveries: int = 3  # recoveries per run, counted over its restarts (run_state.json)
    fault_nan_batches: str = ""  # FAULT INJECTION for tests only: "5" or "5,9", 1-based batches
    #                              of this process's training input whose images become NaN

    # ------------------------------------------------------------------ helpers
    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(unknown)} in saved config")
        return cls(**values)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def decoupled_decay(self):
        """The decoupled weight decay the run applies: `decoupled_weight_decay`, or when unset
        ADAMW_DEFAULT_DECAY with adamw and 0 with the other optimizers."""
        if self.decoupled_weight_decay is not None:
            return self.decoupled_weight_decay
        return ADAMW_DEFAULT_DECAY if self.optimizer == "adamw" else 0.0

    def with_resolved_paths(self):
        """Local paths made absolute against the current directory (URLs such as gs:// and the
        name "imagenet" as they are), so that a run records where its files really are."""
        dataset = self.dataset
        if dataset.startswith("folder:"):
            dataset = "folder:" + resolve(dataset.split(":", 1)[1])
        init = self.init_weights
        return self.replace(
            model_dir=resolve(self.model_dir), export_dir=resolve(self.export_dir),
            data_dir=resolve(self.data_dir), cache_dir=resolve(self.cache_dir),
            dataset=dataset, init_weights=init if init in (None, "imagenet") else resolve(init),
            eval_exclude=resolve(self.eval_exclude))

    def validate(self):
        """Checks values that do not need TensorFlow; raises ConfigError with a one-line fix."""
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}"
            )
        positive = ["image_size", "epochs", "steps_per_execution", "keep_checkpoints",
                    "log_every_steps"]
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.eval_crops not in (1, 10, 12, 144):
            raise ConfigError(f"eval_crops must be 1, 10, 12 or 144, got {self.eval_crops}")
        non_negative = ["head_epochs", "global_batch_size", "per_replica_batch_size", "steps_per_epoch",
                        "eval_steps", "eval_every_epochs", "checkpoint_every_steps",
                        "weight_decay", "warmup_epochs", "num_cpu_devices",
                        "lr_reference_batch_size", "cold_epochs", "lr_floor_fraction",
                        "rmsprop_initial_mean_square"]
        for key in non_negative:
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.global_batch_size == 0 and self.per_replica_batch_size == 0:
            raise ConfigError("set a batch size: --batch_size N (global) or "
                              "--set per_replica_batch_size=N")
        if self.ema_momentum is not None and not 0.0 < self.ema_momentum < 1.0:
            raise ConfigError(f"ema_momentum must be in (0, 1) or None, got {self.ema_momentum}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.decay_epochs <= 0:
            raise ConfigError(f"decay_epochs must be > 0, got {self.decay_epochs}")
        if self.max_call_seconds <= 0:
            raise ConfigError(f"max_call_seconds must be > 0, got {self.max_call_seconds}")
        _validate_network(self)
        self._validate_recipe_knobs()
        return self

    def _validate_recipe_knobs(self):
        """Learning rate, warm-up and augmentation: each user mistake is one ConfigError line."""
        if self.base_learning_rate <= 0:
            raise ConfigError(f"base_learning_rate must be > 0, got {self.base_learning_rate}: "
                              "a recipe sets it (--set base_learning_rate=0.045)")
        if self.decay_rate <= 0:
            raise ConfigError(f"decay_rate must be > 0 (1.0: no decay), got {self.decay_rate}")
        if self.lr_floor_fraction >= 1:
            raise ConfigError(f"lr_floor_fraction must be in [0, 1), got {self.lr_floor_fraction}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        _validate_training_policies(self)
        if self.augment not in AUGMENT_POLICIES:
            raise ConfigError(f"unknown augment {self.augment!r}: use one of "
                              f"{', '.join(AUGMENT_POLICIES)}")
        for key, low, high in (("augment_magnitude", 0.0, 10.0), ("random_erasing", 0.0, 1.0),
                               ("mix_switch_prob", 0.0, 1.0), ("mix_prob", 0.0, 1.0)):
            if not low <= getattr(self, key) <= high:
                raise ConfigError(f"{key} must be in [{low:g}, {high:g}], got "
                                  f"{getattr(self, key)}")
        for key in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0 (0: off), got {getattr(self, key)}")
        if self.augment_layers < 1:
            raise ConfigError(f"augment_layers must be >= 1, got {self.augment_layers}")
        if self.color_distortion not in COLOR_DISTORTIONS:
            raise ConfigError(f"unknown color_distortion {self.color_distortion!r}: use one of "
                              f"{', '.join(COLOR_DISTORTIONS)}")
        if self.warmup not in WARMUPS:
            raise ConfigError(f"unknown warmup {self.warmup!r}: use one of {', '.join(WARMUPS)}")
        if self.warmup == "none" and (self.warmup_epochs or self.cold_epochs):
            raise ConfigError("warmup_epochs/cold_epochs need a warm-up shape: "
                              "--set warmup=linear or warmup=tpu_reference")
        if self.warmup != "none" and self.warmup_epochs <= 0:
            raise ConfigError(f"warmup={self.warmup} needs warmup_epochs > 0")
        if self.warmup == "linear" and self.cold_epochs:
            raise ConfigError("cold_epochs is part of warmup=tpu_reference only: "
                              "--set cold_epochs=0 or warmup=tpu_reference")
        if self.warmup == "tpu_reference" and self.warmup_epochs + self.decay_epochs <= 1:
            raise ConfigError("warmup=tpu_reference ramps over warmup_epochs + decay_epochs - 1 "
                              "epochs: make warmup_epochs + decay_epochs > 1")


def _validate_network(config):
    """The paper's model switches (build_inception_v3's stem, receptive_field, aux_batch_norm)."""
    for key, choices in (("stem", STEMS), ("receptive_field", RECEPTIVE_FIELDS)):
        if getattr(config, key) not in choices:
            raise ConfigError(f"unknown {key} {getattr(config, key)!r}: use one of "
                              f"{', '.join(str(choice) for choice in choices)}")
    if config.receptive_field != 299 and config.image_size != config.receptive_field:
        raise ConfigError(f"receptive_field={config.receptive_field} is the paper's "
                          f"{config.receptive_field}x{config.receptive_field} network: set "
                          f"image_size={config.receptive_field} (image_size is "
                          f"{config.image_size}), or receptive_field=299 for other sizes")
    changed = config.stem != "factorized" or not config.aux_batch_norm or (
        config.receptive_field != 299)
    if config.variant != "canonical" and changed:
        raise ConfigError(f"stem, aux_batch_norm and receptive_field switch the canonical "
                          f"network; variant={config.variant} has its own: leave them at their "
                          "defaults")


def _choice(config, key, choices):
    if getattr(config, key) not in choices:
        raise ConfigError(f"unknown {key} {getattr(config, key)!r}: use one of {', '.join(choices)}")


def _validate_training_policies(config):
    """Optimizer, schedule, decay groups, best checkpoint, observability: one line each."""
    for key, choices in (("lr_schedule", LR_SCHEDULES), ("keep_best", KEEP_BEST),
                         ("export", EXPORT_CHOICES), ("on_nonfinite", ON_NONFINITE)):
        _choice(config, key, choices)
    if config.lr_schedule == "cosine" and config.warmup == "tpu_reference":
        raise ConfigError("lr_schedule=cosine takes warmup=linear or none")
    for key, low in (("decoupled_weight_decay", 0.0), ("histogram_every", 0),
                     ("max_recoveries", 0)):
        if getattr(config, key) is not None and getattr(config, key) < low:
            raise ConfigError(f"{key} must be >= {low:g}, got {getattr(config, key)}")
    for key in ("head_lr_multiplier", "watch_timeout"):
        if getattr(config, key) <= 0:
            raise ConfigError(f"{key} must be > 0, got {getattr(config, key)}")
    groups = [g.strip() for g in config.no_decay_on.split(",") if g.strip()]
    if groups != ["none"] and not set(groups) <= set(NO_DECAY_GROUPS):
        raise ConfigError(f"no_decay_on={config.no_decay_on!r}: use none or a comma-separated "
                          f"subset of {', '.join(NO_DECAY_GROUPS)}")
    if config.export == "best" and config.keep_best == "none":
        raise ConfigError("export=best needs a best checkpoint: --set keep_best=val_top1")
    if config.keep_best != "none" and not config.eval_every_epochs:
        raise ConfigError("keep_best needs validations during training: eval_every_epochs >= 1")
    profile_steps(config)
    for key in ("min_agreement_float", "min_agreement_int8"):
        if not 0.0 <= getattr(config, key) <= 1.0:
            raise ConfigError(f"{key} must be in [0, 1], got {getattr(config, key)}")
    _check_fault_nan_batches(config)
    formats = [name.strip() for name in config.export_formats.split(",") if name.strip()]
    if not formats or not set(formats) <= set(EXPORT_FORMATS):
        raise ConfigError(f"export_formats={config.export_formats!r}: use a comma-separated "
                          f"list of {', '.join(EXPORT_FORMATS)}")


def profile_steps(config):
    """(first, last) 1-based steps of `profile_steps`, or None; ConfigError if malformed."""
    if not config.profile_steps:
        return None
    try:
        first, last = (int(part) for part in config.profile_steps.split(","))
    except ValueError:
        raise ConfigError(f"profile_steps={config.profile_steps!r}: expected A,B (two step "
                          "numbers, e.g. 100,110)") from None
    if not 1 <= first <= last:
        raise ConfigError(f"profile_steps={config.profile_steps!r}: need 1 <= A <= B")
    return first, last


def _check_fault_nan_batches(config):
    """`fault_nan_batches` is empty or batch numbers >= 1, comma-separated."""
    text = config.fault_nan_batches.strip()
    if not text:
        return
    try:
        positions = [int(part) for part in text.split(",")]
    except ValueError:
        positions = [0]
    if min(positions) < 1:
        raise ConfigError(f"fault_nan_batches={config.fault_nan_batches!r}: expected batch "
                          "numbers >= 1, comma-separated (e.g. 5 or 5,9); empty: off")


def _field_types():
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _parse_value(key, text, annotation):
    optional = typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(
        annotation
    )
    base = [a for a in typing.get_args(annotation) if a is not type(None)][0] if optional else (
        annotation
    )
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if base is int:
            return int(text)
        if base is float:
            return float(text)
        return str(text)
    except ValueError:
        kind = "true/false" if base is bool else base.__name__
        extra = " or none" if optional else ""
        raise ConfigError(f"--set {key}={text}: expected {kind}{extra}") from None


def apply_overrides(config, assignments):
    """Applies `key=value` strings (from `--set`) to a copy of `config`, parsing by field type."""
    types = _field_types()
    changes = {}
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set image_size=96")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in types:
            close = difflib.get_close_matches(key, list(types), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else (
                "; run with --help_config to list them"
            )
            raise ConfigError(f"--set {key}: unknown config key{hint}")
        changes[key] = _parse_value(key, text, types[key])
    return dataclasses.replace(config, **changes)


def describe_fields():
    """`key (type) = default` lines for `--help_config`."""
    defaults = TrainConfig()
    lines = []
    for name, annotation in _field_types().items():
        kind = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        lines.append(f"  {name} ({kind}) = {getattr(defaults, name)!r}")
    return "\n".join(lines)
