"""What a run settles before it builds anything: strategy, precision, dataset, batch, epoch.

    setup = setup_run(config)          # TrainerError (one line) for anything the user can fix
    setup.config.global_batch_size     # resolved: the global batch, steps_per_epoch, precision
    setup.strategy, setup.policy, setup.info, setup.is_chief

`setup_run(config, export_only=True)` runs on this process's default device in float32, whatever
strategy the run trained with: an export needs no accelerator.
"""

import dataclasses

import keras
import tensorflow as tf

import inception_keras.data as data
from inception_keras.training.cluster import distribute
from inception_keras.training.errors import TrainerError


@dataclasses.dataclass(frozen=True)
class RunSetup:
    config: object  # the resolved TrainConfig
    strategy: tf.distribute.Strategy
    policy: str  # the Keras dtype policy, set globally
    precision_reason: str
    info: data.DatasetInfo
    task_type: object = None  # "worker"/"chief" in a multi-worker run, else None
    task_id: int = 0
    is_chief: bool = True

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync


def setup_run(config, *, export_only=False, for_training=True):
    """Strategy, precision, dataset sizes and the resolved config of a run."""
    strategy, policy, reason = _strategy_and_precision(config, export_only)
    info = dataset_info(config)
    replicas = strategy.num_replicas_in_sync
    if for_training:
        config = config.replace(global_batch_size=_global_batch(config, replicas),
                                steps_per_epoch=_steps_per_epoch(config, info, replicas))
    else:  # evaluation: any batch that divides among the replicas
        batch = config.global_batch_size or config.per_replica_batch_size * replicas
        config = config.replace(global_batch_size=max(batch // replicas, 1) * replicas,
                                steps_per_epoch=config.steps_per_epoch or 1)
    config = config.replace(precision=policy)
    task_type, task_id, is_chief = distribute.task_info(strategy)
    return RunSetup(config, strategy, policy, reason, info, task_type, task_id, is_chief)


def _strategy_and_precision(config, export_only):
    if export_only:
        keras.mixed_precision.set_dtype_policy("float32")
        return tf.distribute.get_strategy(), "float32", "export"
    try:
        distribute.setup_cpu_devices(config.num_cpu_devices)
        strategy = distribute.make_strategy(config.strategy, tpu=config.tpu,
                                            devices=config.devices)
    except distribute.StrategyError as error:
        raise TrainerError(str(error)) from None
    policy = distribute.resolve_precision(config.precision, strategy)
    keras.mixed_precision.set_dtype_policy(policy)
    return strategy, policy, distribute.precision_reason(config.precision, policy, strategy)


def dataset_info(config):
    try:
        return data.dataset_info(config.dataset, config.data_dir)
    except data.DataError as error:
        raise TrainerError(str(error)) from None


def _global_batch(config, replicas):
    batch = config.global_batch_size or config.per_replica_batch_size * replicas
    if batch % replicas:
        raise TrainerError(
            f"global batch {batch} is not divisible by the {replicas} replicas: pass "
            f"--batch_size {max(batch // replicas, 1) * replicas} (a multiple of {replicas})")
    return batch


def _steps_per_epoch(config, info, replicas):
    batch = _global_batch(config, replicas)
    if config.steps_per_epoch:
        return config.steps_per_epoch
    if not info.num_train_examples:
        raise TrainerError(f"the size of {config.dataset}'s training split is unknown: pass "
                           "--steps_per_epoch N")
    steps = info.num_train_examples // batch
    if steps < 1:
        raise TrainerError(
            f"{info.num_train_examples} training examples make no full batch of {batch}: "
            "pass a smaller --batch_size or --steps_per_epoch N")
    return steps
