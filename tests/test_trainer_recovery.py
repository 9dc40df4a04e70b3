"""A long run survives a bad step (`on_nonfinite=recover`), and keeps its best checkpoint: two
runs of the same command, from a working directory with relative paths, on a 3-class folder of
photos (one colour channel full per class).

1. `fault_nan_batches=7` (the test-only fault injection: batch 7 of the process's input holds NaN
   images, so the real step's loss is NaN) in the call of steps 7-8: the run restores ckpt-4,
   skips the batches drawn for steps 5-8 and finishes (a rewound input would meet batch 7 again
   and spend both recoveries). The learning rate x1000 in epoch 3 ruins the model, so epoch 1's
   or 2's validation is the best: `export=best` exports the weights of its checkpoint.
2. The same command with a fourth epoch at a learning rate of 1e38 x 1000 (inf): the weights
   overflow, the loss is NaN; the run recovers once more (2 of 2, counted on from run 1 through
   run_state.json), diverges again and stops with exit status 1, keeping ckpt-48. It does not
   validate epoch 3 again (run 1 did).
"""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_trainer

STEPS, EPOCHS, CLASSES = 16, 3, ("red", "green", "blue")
ARGS = ["--dataset", "folder:photos", "--model_dir", "run", "--export_dir", "exports",
        "--batch_size", "8", "--epochs", str(EPOCHS), "--steps_per_epoch", str(STEPS),
        "--precision", "float32", "--set", "image_size=75", "--set", "depth_multiplier=0.125",
        "--set", "image_summaries=false", "--set", "log_every_steps=4",
        "--set", "deterministic=true", "--set", "seed=1",
        "--set", "base_learning_rate=0.01", "--set", "batch_norm_momentum=0.5",
        "--set", "decay_rate=1000", "--set", "decay_epochs=2",  # epoch 3 at 10: ruined
        "--set", "keep_best=val_top1", "--set", "export=best",
        "--set", "checkpoint_every_steps=4", "--set", "steps_per_execution=2",
        "--set", "on_nonfinite=recover", "--set", "max_recoveries=2"]


def scalars(folder, tag):
    values = {}
    for path in tf.io.gfile.glob(f"{folder}/events.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


def tensors(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    return [reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if key != "_CHECKPOINTABLE_OBJECT_GRAPH"]


def holds(exported, checkpoint):
    """Every exported weight is one of the checkpoint's tensors, value for value."""
    saved = tensors(checkpoint)
    return all(any(t.shape == w.shape and np.array_equal(t, w) for t in saved) for w in exported)


@pytest.mark.slow
def test_a_nan_batch_is_recovered_from_and_a_real_divergence_stops_after_max_recoveries(
        tmp_path, write_image_folder):
    write_image_folder(tmp_path / "photos", CLASSES, 16, 4)
    run = tmp_path / "run"
    # 1. the call of steps 7-8 meets NaN images; the first two calls run one step each (the
    # CallPlanner measures the step time first), then two: 3-4, 5-6, 7-8
    code, output = run_trainer(tmp_path, *ARGS, "--set", "fault_nan_batches=7")
    assert code == 0, output[-4000:]
    assert (f"non-finite loss in steps 7-8: restored {run}/checkpoints/ckpt-4 (step 4); the "
            "batches drawn for steps 5-8 are skipped, training goes on from step 5 with the "
            "batches after them (recovery 1 of 2)") in output, output[-4000:]
    assert "Traceback" not in output and "recovery 2 of 2" not in output
    state = json.loads((run / "run_state.json").read_text())
    assert state["recoveries"] == [{"failed_steps": [7, 8], "restored_step": 4,
                                    "checkpoint": f"{run}/checkpoints/ckpt-4"}]
    assert state["trained_step"] == EPOCHS * STEPS
    assert scalars(run / "tensorboard" / "train", "stability/recoveries") == {8: 1.0}

    # the best validation is epoch 1's or 2's (the first of equals); the export holds the
    # weights of its checkpoint, not the last one's
    validations = [float(v) for v in re.findall(r"epoch \d/3 done .*val_top1 ([0-9.]+)", output)]
    assert len(validations) == EPOCHS and max(validations[:2]) > validations[2], validations
    best = STEPS * (validations.index(max(validations)) + 1)
    assert state["best"]["step"] == best and state["exported"]["step"] == best
    assert f"final evaluation and export use the best checkpoint, step {best}" in output
    exported = tensors(str(tmp_path / "exports" / "inception_v3" / "1" / "variables" /
                               "variables"))
    assert len(exported) > 100  # every weight of the served network (the aux head dropped)
    assert holds(exported, state["best"]["path"])
    assert not holds(exported, str(run / "checkpoints" / f"ckpt-{EPOCHS * STEPS}"))

    # 2. a fourth epoch whose learning rate overflows: step 49 makes the weights inf, step 50's
    # loss is NaN; after the recovery the call of steps 49-50 fails again
    code, output = run_trainer(tmp_path, *ARGS, "--epochs", str(EPOCHS + 1),
                               "--set", "base_learning_rate=1e38")
    assert code == 1, output[-4000:]
    last = EPOCHS * STEPS
    assert f"resumed from epoch {EPOCHS} step {STEPS} (global step {last})" in output
    assert f"validating the weights of step {last}" not in output  # run 1 validated it
    assert re.search(rf"non-finite loss in steps {last + 2}-{last + 2}: restored \S+/ckpt-{last} "
                     rf"\(step {last}\); .* \(recovery 2 of 2\)", output), output[-4000:]
    assert re.search(rf"training stopped at step {last + 2}: the loss or the weights became "
                     rf"non-finite; the last good checkpoint is {run}/checkpoints/ckpt-{last}; 2 "
                     "of max_recoveries=2 recoveries spent over the run", output), output[-4000:]
    assert "Traceback" not in output
    state = json.loads((run / "run_state.json").read_text())
    assert [r["restored_step"] for r in state["recoveries"]] == [4, last]
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith(f"ckpt-{last}")
