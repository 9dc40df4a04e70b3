"""Evaluation records (README "Evaluation records"): where each evaluation's record goes, what it
holds, what a rerun relies on; the ensemble's scoring and its checks; the flags and keys."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from configs import ConfigError, get_config
from inception_keras.training import ensemble
from inception_keras.training.errors import TrainerError
from inception_keras.training.loop.progress import Summaries
from inception_keras.training.records import reports
from inception_keras.training.records.run_state import RunState

CLASSES = ("a", "b", "c")


def _results(examples=4):
    confusion = np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0]], np.float32)
    return {"top1": 0.75, "top5": 1.0, "cross_entropy": 0.5, "examples": examples,
            "confusion": confusion}


def _write(tmp_path, lines, **kwargs):
    config = get_config("smoke").replace(eval_crops=12)
    return reports.write_final(_results(), config=config, class_names=CLASSES, step=30,
                               weights="EMA weights", summaries=Summaries(None), log=lines.append,
                               out_dir=str(tmp_path), **kwargs)


def test_the_final_evaluation_is_eval_json_and_every_other_has_its_own_record(tmp_path):
    lines = []
    final, path = _write(tmp_path, lines, selection={"checkpoint": "last", "why": "the end"})
    assert path == str(tmp_path / "eval.json") and (tmp_path / "confusion_matrix.png").exists()
    assert json.loads((tmp_path / "eval.json").read_text()) == final
    assert {key: final[key] for key in ("kind", "config", "examples", "excluded", "eval_crops",
                                        "step", "image_size", "checkpoint")} == {
        "kind": "final", "config": "smoke", "examples": 4, "excluded": 0, "eval_crops": 12,
        "step": 30, "image_size": 96, "checkpoint": "last"}
    assert final["per_class_top1"] == {"a": 1.0, "b": 0.5, "c": None}

    name = reports.record_name(get_config("smoke").replace(eval_crops=12), step=30, excluded=2)
    assert name == "step30-crops12-exclude2"
    first, first_path = _write(tmp_path, lines, kind="eval_only", name=name,
                               extra={"excluded": 2, "checkpoint": "/r/checkpoints/ckpt-30"})
    second, second_path = _write(tmp_path, lines, kind="eval_only", name=name,
                                 extra={"excluded": 2})
    folder = tmp_path / "evaluations"
    assert (first_path, second_path) == (str(folder / f"{name}.json"),
                                         str(folder / f"{name}-2.json"))
    assert sorted(os.listdir(folder)) == [f"{name}-2.json", f"{name}-2.png", f"{name}.json",
                                          f"{name}.png"]
    assert json.loads((folder / f"{name}.json").read_text()) == first
    assert first["kind"] == "eval_only" and first["checkpoint"] == "/r/checkpoints/ckpt-30"
    assert json.loads((tmp_path / "eval.json").read_text()) == final  # untouched
    assert ("final evaluation (EMA weights, 12 crops): top-1 0.7500  top-5 1.0000  "
            "cross-entropy 0.5000  on 4 images (2 excluded by eval_exclude)") in lines
    assert f"wrote {first_path} and {folder / (name + '.png')}" in lines


def test_record_names():
    config = get_config("smoke")
    assert reports.record_name(config) == "init-crops1"
    assert reports.record_name(config.replace(eval_crops=144), members=4,
                               excluded=1762) == "ensemble4-crops144-exclude1762"


def test_a_rerun_relies_on_the_record_run_state_names(tmp_path):
    state = RunState(evaluated={"step": 372, "eval_crops": 1, "path": "/x/eval.json"})
    assert state.evaluated_at(372, 1) and not state.evaluated_at(372, 10)
    assert not state.evaluated_at(371, 1)
    assert state.evaluation_path("/run") == "/run/eval.json"  # a moved run: where it is now
    older = RunState(evaluated={"step": 372, "eval_crops": 1})  # written before "path"
    assert older.evaluated_at(372, 1) and older.evaluation_path("/run") == "/run/eval.json"
    assert not RunState().evaluated_at(372, 1)
    assert not state.evaluated_at(372, 1, "/lists/blacklist.txt")  # scored without exclusion
    excluded = RunState(evaluated={"step": 372, "eval_crops": 1, "path": "/x/eval.json",
                                   "eval_exclude": "/lists/blacklist.txt"})
    assert excluded.evaluated_at(372, 1, "/lists/blacklist.txt")
    assert not excluded.evaluated_at(372, 1)


def test_ensemble_scores_the_mean_probabilities():
    rng = np.random.default_rng(0)
    members = [rng.dirichlet(np.ones(7), size=50) for _ in range(3)]
    labels = rng.integers(0, 7, 50)
    mean = np.mean(members, axis=0)
    results = ensemble.score(mean, labels, 7)
    order = np.argsort(-mean, axis=1)
    assert results["top1"] == np.mean(order[:, 0] == labels)
    assert results["top5"] == np.mean([label in row[:5] for row, label in zip(order, labels)])
    np.testing.assert_allclose(results["cross_entropy"],
                               -np.mean(np.log(mean[np.arange(50), labels])), rtol=1e-12)
    assert results["examples"] == 50 and results["confusion"].sum() == 50
    assert results["confusion"][labels[0], order[0, 0]] >= 1
    assert np.trace(results["confusion"]) == np.sum(order[:, 0] == labels)


def test_ensemble_members_must_score_the_same_images():
    config = get_config("smoke")
    a, b = config.replace(model_dir="/a"), config.replace(model_dir="/b", eval_crops=10)
    with pytest.raises(TrainerError, match="/b has eval_crops 10, /a 1: members must score"):
        ensemble.check_members_agree([a, b], [CLASSES, CLASSES])
    with pytest.raises(TrainerError, match="different classes"):
        ensemble.check_members_agree([a, a], [CLASSES, ("a", "b", "x")])
    with pytest.raises(TrainerError, match="other images or labels"):
        ensemble.check_same_labels(np.array([0, 1]), np.array([0, 2]), "/b")


def test_eval_crops_and_eval_exclude_keys(tmp_path, monkeypatch):
    config = get_config("smoke")
    assert config.replace(eval_crops=12).validate().eval_crops == 12
    with pytest.raises(ConfigError, match="eval_crops must be 1, 10, 12 or 144, got 11"):
        config.replace(eval_crops=11).validate()
    monkeypatch.chdir(tmp_path)
    resolved = config.replace(eval_exclude="list.txt").with_resolved_paths()
    assert resolved.eval_exclude == str(tmp_path / "list.txt")


def test_a_repeated_model_dir_is_for_eval_only(capsys):
    from trainers.imagenet import main

    assert main(["--model_dir", "a", "--model_dir", "b"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --model_dir is given 2 times: only --eval_only (without --watch) takes several, "
        "to evaluate them as an ensemble; give one")
    assert main(["--eval_only", "--watch", "--model_dir", "a", "--model_dir", "b"]) == 2
