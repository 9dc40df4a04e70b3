"""Picking the `tf.distribute` strategy and the numeric precision for a training run.

    setup_cpu_devices(2)                     # before anything touches TensorFlow devices
    strategy = make_strategy("mirrored", devices="/cpu:0,/cpu:1")
    policy = resolve_precision("auto", strategy)   # 'mixed_bfloat16' on an AVX512_BF16 CPU
    keras.mixed_precision.set_dtype_policy(policy)

Every strategy is a real `tf.distribute` one: `TPUStrategy` (via `TPUClusterResolver`),
`MirroredStrategy`, `MultiWorkerMirroredStrategy` (cluster from `TF_CONFIG`), `OneDeviceStrategy`
on the first GPU (`one_device`) or on the CPU (`cpu`). Failures that are the user's to fix (no TPU,
no GPU for `mirrored`, a bad `TF_CONFIG`) raise `StrategyError` with a one-line message.
"""

import json
import os
import tempfile

import tensorflow as tf

from inception_keras.choices import STRATEGIES


class StrategyError(RuntimeError):
    """The requested strategy cannot run on this machine; the message says what was looked for."""


def setup_cpu_devices(count):
    """Splits the host CPU into `count` logical devices (to run `mirrored` on a CPU-only machine).

    Must run before TensorFlow initialises its devices (before any op or strategy is created).
    """
    if count <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError as error:
        raise StrategyError(
            f"cannot split the CPU into {count} devices after TensorFlow started ({error}); "
            "pass num_cpu_devices before anything else runs"
        ) from None


def _tpu_strategy(tpu):
    resolver_arg = None if tpu in (None, "") else tpu
    looked_for = f"TPU {tpu!r}" if resolver_arg else "a TPU (no --tpu name given)"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=resolver_arg)
        if resolver_arg != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as error:  # resolver raises ValueError/NotFoundError/URLError etc.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise StrategyError(
            f"--strategy tpu: no TPU found; looked for {looked_for} with TPUClusterResolver "
            f"({type(error).__name__}: {first_line[:160]}). On a TPU VM use --tpu local, "
            "else --tpu NAME of a reachable Cloud TPU, or pick --strategy mirrored/cpu"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def _mirrored_strategy(devices):
    if devices:
        names = [d.strip() for d in devices.split(",") if d.strip()]
        logical = tf.config.list_logical_devices()
        present = {(spec.device_type, spec.device_index)
                   for spec in (tf.DeviceSpec.from_string(d.name) for d in logical)}
        for name in names:
            try:
                spec = tf.DeviceSpec.from_string(name)
            except ValueError:
                spec = None
            if spec is None or (spec.device_type, spec.device_index) not in present:
                raise StrategyError(
                    f"--devices: {name!r} is not a device of this machine; available: "
                    + ", ".join(d.name.split("device:")[-1] for d in logical)
                )
        return tf.distribute.MirroredStrategy(devices=names)
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:  # logical CPU devices (num_cpu_devices): mirrored over them
        return tf.distribute.MirroredStrategy(devices=[d.name for d in cpus])
    raise StrategyError(
        "--strategy mirrored: no GPU found (tf.config.list_logical_devices('GPU') is empty); "
        "use --strategy cpu, or --cpu_devices 2 to mirror over logical CPU devices"
    )


def _multi_worker_strategy():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise StrategyError(
            "--strategy multi_worker needs TF_CONFIG (cluster and task) in the environment; "
            'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}\''
        )
    try:
        tf_config = json.loads(raw)
        tf_config["cluster"], tf_config["task"]["type"], tf_config["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise StrategyError(
            "TF_CONFIG is not valid: it must be JSON with 'cluster' and "
            "'task': {'type': ..., 'index': ...}"
        ) from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def make_strategy(name, *, tpu="local", devices=None):
    """The `tf.distribute.Strategy` for `name` (one of STRATEGIES)."""
    if name == "tpu":
        return _tpu_strategy(tpu)
    if name == "mirrored":
        return _mirrored_strategy(devices)
    if name == "multi_worker":
        return _multi_worker_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    raise StrategyError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")


def strategy_kind(strategy):
    """'tpu', 'gpu' or 'cpu': what the strategy's replicas run on."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    devices = getattr(strategy.extended, "worker_devices", None) or ()
    if any("GPU" in d.upper() for d in devices):
        return "gpu"
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and tf.config.list_logical_devices("GPU"):
        return "gpu"
    return "cpu"


def cpu_supports_bfloat16():
    """True on x86 CPUs with native bfloat16 math (AVX512_BF16 or AMX), where oneDNN runs bf16."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision, strategy):
    """The Keras dtype policy name for `--precision` (auto: bf16 on TPU, fp16 on GPU, ...)."""
    if precision != "auto":
        return precision
    kind = strategy_kind(strategy)
    if kind == "tpu":
        return "mixed_bfloat16"
    if kind == "gpu":
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"


def precision_reason(precision, policy, strategy):
    """A few words for the startup summary on why this policy was picked."""
    if precision != "auto":
        return "set by --precision"
    kind = strategy_kind(strategy)
    if kind == "tpu":
        return "auto: TPU"
    if kind == "gpu":
        return "auto: GPU, with dynamic loss scaling"
    if policy == "mixed_bfloat16":
        return "auto: CPU has AVX512_BF16/AMX"
    return "auto: CPU without bfloat16 support"


def task_info(strategy):
    """(task_type, task_id, is_chief) of this process; single-process runs are the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return None, 0, True
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    cluster = resolver.cluster_spec().as_dict()
    if task_type == "chief":
        return task_type, task_id, True
    is_chief = task_type == "worker" and task_id == 0 and "chief" not in cluster
    return task_type, task_id, is_chief


def worker_dir(base_dir, strategy):
    """Where this process writes: `base_dir` on the chief, a private temp dir on other workers.

    Every worker must take part in saving (variables are read collectively), but only the chief's
    files are kept; the caller removes the temp dir afterwards.
    """
    task_type, task_id, is_chief = task_info(strategy)
    if is_chief:
        return base_dir
    return tempfile.mkdtemp(prefix=f"inception_{task_type}_{task_id}_")
