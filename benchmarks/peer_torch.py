"""Training and inference images/s of our Inception-v3 vs PyTorch's torchvision inception_v3.

A peer measured in the same process, on the same in-memory batch (random images in [-1, 1],
fixed labels: no input pipeline is timed), batch size, image size (299), precision and threads:

- ours, train: the trainer's own full-size step (`Trainer(setup_run(config)).train(iterator, 1)`
  with the `paper` recipe: both heads, TF-1 RMSprop 0.9/0.9/1.0, clip 2.0 after the all-reduce,
  label smoothing 0.1, aux x0.4, weight decay, no EMA) on the `cpu` strategy;
- ours, inference: `build_inception_v3(include_aux=False)` called in a `tf.function` with
  `training=False` (what the SavedModel's signatures run);
- torch, train: torchvision `inception_v3(weights=None, aux_logits=True, init_weights=True)` in
  train mode, label-smoothed (0.1) cross-entropy of the main logits + 0.4 x the aux logits',
  backward, `clip_grad_norm_(2.0)`, `RMSprop(lr=0.045, alpha=0.9, eps=1.0, momentum=0.9)`;
- torch, inference: `model.eval()` and `torch.inference_mode()`.

Torch gets its fast CPU settings: model and batch in `channels_last` (oneDNN's layout; NCHW
measured ~25% slower here; `--torch_memory_format contiguous`), and OpenMP threads that sleep
while they wait (`OMP_WAIT_POLICY=PASSIVE` unless set: spinning threads made its steps 3-5x
slower whenever other processes used the cores).

Both get the same number of threads before anything runs (`--threads`, default os.cpu_count()):
`torch.set_num_threads(n)` and TensorFlow's intra-op pool of n; TensorFlow's inter-op pool gets
`--inter_op_threads` (default 1: one op at a time on n threads, as torch runs its ops; measured
here also faster for ours than 2 with 2 cores). `--precision mixed_bfloat16` runs ours under that
Keras policy and torch under `autocast(cpu, bfloat16)`.

After `--warmup` untimed steps of each, `--rounds` rounds of `--steps` timed steps of each of the
four, the order reversed every other round; a contender's speed is batch / median step time
(`_fastest`: batch / its fastest step, the least disturbed by other processes).

    pip install -e ".[bench]"      # torch and torchvision (see pyproject.toml)
    python benchmarks/peer_torch.py [--batch_size 32] [--rounds 3] [--steps 3] [--threads N]

Last line: RESULT vs_torch_train=<ours/torch train images/s> vs_torch_infer=<ours/torch
inference images/s> vs_torch_train_fastest=... vs_torch_infer_fastest=..., the four images/s and
the settings (goal: vs_torch_train and vs_torch_infer >= 1).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Waiting OpenMP threads sleep instead of spinning (unless set otherwise): on a machine whose
# cores other processes use too, torch's spinning threads wait out every descheduled sibling
# at each op's barrier (measured here: 9-22 s instead of 2.5-4 s per batch-4 train step).
# TensorFlow does not use OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# PyTorch before TensorFlow: torchvision loads triton, whose LLVM crashes the process
# (SIGSEGV) when TensorFlow's LLVM is already loaded; the other order works.
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs import get_config  # noqa: E402
from inception_keras.models.inception_v3 import build_inception_v3  # noqa: E402
from inception_keras.training import inputs  # noqa: E402
from inception_keras.training.setup import setup_run  # noqa: E402
from inception_keras.training.trainer import Trainer  # noqa: E402

IMAGE_SIZE = 299  # torchvision's train-mode aux head needs 17x17 maps: 299 px
LABEL_SMOOTHING, AUX_WEIGHT, CLIPNORM = 0.1, 0.4, 2.0  # the paper recipe's, for torch


def set_threads(threads, inter_op_threads):
    torch.set_num_threads(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)


# ------------------------------------------------------------------------------------- ours
def trainer_batch(setup, images, class_ids):
    """`images` and `class_ids` in the form the trainer's own input pipeline feeds its step:
    its image dtype, and its labels (class ids [B] or one-hot [B, C], whichever it yields)."""
    spec_images, spec_labels = inputs.input_fn(
        setup.config, setup.info, split="train", is_training=True)(None).element_spec
    if spec_labels.shape.rank == 1:
        labels = tf.constant(class_ids, spec_labels.dtype)
    else:
        labels = tf.one_hot(class_ids, setup.info.num_classes, dtype=spec_labels.dtype)
    return tf.cast(images, spec_images.dtype), labels


def our_setup(args, folder):
    """The trainer's run setup (strategy, dtype policy, dataset info) for the paper recipe."""
    config = get_config("paper").replace(
        dataset="synthetic", image_size=IMAGE_SIZE, global_batch_size=args.batch_size,
        steps_per_epoch=1000, strategy="cpu", precision=args.precision, ema_momentum=None,
        model_dir=os.path.join(folder, "run"), export_dir=os.path.join(folder, "export"),
    ).with_resolved_paths().validate()
    return setup_run(config)  # sets the Keras dtype policy


def our_contenders(setup, args, images, class_ids):
    """{'ours_train': step, 'ours_infer': step}: each call runs one step and returns once done."""
    trainer = Trainer(setup)
    batch = trainer_batch(setup, images, class_ids)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    iterator = iter(setup.strategy.experimental_distribute_dataset(dataset))

    model = build_inception_v3(include_aux=False, classes=setup.info.num_classes,
                               input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    keras.mixed_precision.set_dtype_policy("float32")
    predict = tf.function(lambda x: model(x, training=False))
    inference_images = tf.constant(images)
    return {
        "ours_train": lambda: trainer.train(iterator, 1),  # Python floats: the step is done
        "ours_infer": lambda: predict(inference_images).numpy(),
    }


# ------------------------------------------------------------------------------------ torch
def torch_contenders(args, images, class_ids, num_classes):
    """{'torch_train': step, 'torch_infer': step} on the same batch (transposed to NCHW)."""
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True,
                                            num_classes=num_classes)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.045, alpha=0.9, eps=1.0,
                                    momentum=0.9)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    if args.torch_memory_format == "channels_last":  # oneDNN's preferred layout
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(class_ids.astype(np.int64))
    bfloat16 = args.precision == "mixed_bfloat16"

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16)

    def train():
        model.train()
        with autocast():
            main, aux = model(x)
        loss = (F.cross_entropy(main.float(), y, label_smoothing=LABEL_SMOOTHING)
                + AUX_WEIGHT * F.cross_entropy(aux.float(), y, label_smoothing=LABEL_SMOOTHING))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIPNORM)
        optimizer.step()
        return loss.item()

    def infer():
        model.eval()
        with torch.inference_mode(), autocast():
            return model(x)

    return {"torch_train": train, "torch_infer": infer}


# ----------------------------------------------------------------------------------- timing
def step_seconds(step, count):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def measure(contenders, args):
    """Seconds of every timed step of each contender, rounds interleaved, order alternating."""
    for name, step in contenders.items():
        start = time.perf_counter()
        step_seconds(step, args.warmup)
        print(f"warm-up {name}: {time.perf_counter() - start:.1f} s", flush=True)
    times = {name: [] for name in contenders}
    for index in range(args.rounds):
        order = list(contenders) if index % 2 == 0 else list(reversed(contenders))
        for name in order:
            times[name] += step_seconds(contenders[name], args.steps)
        print(f"round {index + 1}: " + ", ".join(
            f"{name} {statistics.median(times[name]):.2f} s/step" for name in contenders),
            flush=True)
    return times


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per contender per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps of each first")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--inter_op_threads", type=int, default=1,
                        help="TensorFlow's inter-op pool (1: one op at a time, as torch runs)")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--torch_memory_format", default="channels_last",
                        choices=("channels_last", "contiguous"),
                        help="torch's model and batch layout (contiguous: NCHW)")
    args = parser.parse_args()
    counts = (args.batch_size, args.rounds, args.steps, args.threads, args.inter_op_threads)
    if min(counts) < 1 or args.warmup < 0:
        parser.error("batch_size, rounds, steps and thread counts must be >= 1, warmup >= 0")
    if args.batch_size < 2:
        parser.error("batch_size must be >= 2: torch's train-mode batch norm of the aux head "
                     "(1x1 maps) needs more than one value per channel")
    return args


def describe(args):
    return (f"torch {torch.__version__} (torchvision {torchvision.__version__}), TensorFlow "
            f"{tf.__version__}, Keras {keras.__version__}; batch {args.batch_size} at "
            f"{IMAGE_SIZE}px, {args.precision}; threads {args.threads} (TensorFlow inter-op "
            f"{args.inter_op_threads}); torch {args.torch_memory_format}, OMP_WAIT_POLICY="
            f"{os.environ['OMP_WAIT_POLICY']}; load average {os.getloadavg()[0]:.2f}")


def report(times, args):
    speed = {name: args.batch_size / statistics.median(t) for name, t in times.items()}
    fastest = {name: args.batch_size / min(t) for name, t in times.items()}
    for name in times:
        print(f"{name:>12}: {speed[name]:6.2f} images/s (fastest step {fastest[name]:.2f}); "
              "steps " + " ".join(f"{t:.2f}" for t in times[name]))
    print(f"load average {os.getloadavg()[0]:.2f}")
    ratios = {f"vs_torch_{mode}{tag}": value[f"ours_{mode}"] / value[f"torch_{mode}"]
              for tag, value in (("", speed), ("_fastest", fastest))
              for mode in ("train", "infer")}
    keys = [f"{key}={value:.3f}" for key, value in ratios.items()]
    keys += [f"{name}_img_s={value:.2f}" for name, value in speed.items()]
    keys += [f"threads={args.threads}", f"inter_op={args.inter_op_threads}",
             f"batch={args.batch_size}", f"precision={args.precision}",
             f"torch_memory_format={args.torch_memory_format}",
             f"omp_wait_policy={os.environ['OMP_WAIT_POLICY']}"]
    print("RESULT " + " ".join(keys))


def main():
    args = parse_args()
    set_threads(args.threads, args.inter_op_threads)
    rng = np.random.default_rng(0)
    shape = (args.batch_size, IMAGE_SIZE, IMAGE_SIZE, 3)
    images = rng.uniform(-1, 1, shape).astype("float32")
    with tempfile.TemporaryDirectory() as folder:
        setup = our_setup(args, folder)
        num_classes = setup.info.num_classes
        class_ids = rng.integers(0, num_classes, args.batch_size).astype("int32")
        contenders = {**torch_contenders(args, images, class_ids, num_classes),
                      **our_contenders(setup, args, images, class_ids)}
        print(describe(args), flush=True)
        times = measure(contenders, args)
    report(times, args)


if __name__ == "__main__":
    main()
