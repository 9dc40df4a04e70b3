"""python -m inception_keras.paper's reading of runs: which record fills which row (no TF).

The printed tables, from two real runs' eval.json, are tested in tests/test_recipe_matrix.py.
"""

import json

import pytest

from inception_keras.paper import TABLES
from inception_keras.paper.__main__ import RunError, main, row_record, run_records


def record(tmp_path, relative, **fields):
    """An evaluation record as RECORD_SCHEMA writes it (with the keys the table reads)."""
    values = {"kind": "eval_only", "top1": 0.7, "top5": 0.9, "cross_entropy": 1.2,
              "examples": 50000, "excluded": 0, "eval_crops": 1, "step": 100,
              "weights": "EMA weights", "dataset": "imagenet_tfrecord", "image_size": 299,
              **fields}
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


@pytest.fixture
def paper_run(tmp_path):
    run = tmp_path / "run"
    record(tmp_path, "run/config.json", name="paper")  # read for "name" only
    record(tmp_path, "run/eval.json", kind="final", config="paper", top1=0.78, step=500)
    record(tmp_path, "run/evaluations/step400-crops12.json", config="paper", eval_crops=12,
           top1=0.79, step=400)
    record(tmp_path, "run/evaluations/step500-crops12.json", config="paper", eval_crops=12,
           top1=0.80, step=500)
    record(tmp_path, "run/evaluations/step500-crops144.json", config="paper", eval_crops=144,
           top1=0.81, step=500, examples=48238, excluded=1762)
    record(tmp_path, "run/evaluations/ensemble4-crops144.json", kind="ensemble", config="paper",
           eval_crops=144, top1=0.83, step=500, members=[{"model_dir": "a"}] * 4)
    return run


def test_each_record_fills_its_row(paper_run):
    records = run_records(str(paper_run))
    placed = {(table.title.split(":")[0], row.label): row_record(table, row, records)
              for table in TABLES for row in table.rows}
    top1 = {key: value and value["top1"] for key, value in placed.items()}
    assert top1[("Table 3", "+ BN-auxiliary (Inception-v3)")] == 0.78  # single crop, final
    assert top1[("Table 2", "299x299, stride 2, max-pool")] == 0.78
    assert top1[("Table 4", "Inception-v3, 12 crops")] == 0.80  # the latest of two
    assert top1[("Table 4", "Inception-v3, 144 crops")] == 0.81  # not the ensemble's
    assert top1[("Table 5", "4 x Inception-v3, 144 crops")] == 0.83
    assert top1[("Table 3", "Inception-v2")] is None  # no paper_v2 run


def test_recipe_comes_from_config_json_when_a_record_has_none(tmp_path):
    record(tmp_path, "old/config.json", name="paper_res79")
    # written before records named their recipe and kind
    (tmp_path / "old" / "eval.json").write_text(json.dumps({"top1": 0.5, "top5": 0.7}))
    [only] = run_records(str(tmp_path / "old"))
    assert (only["config"], only["kind"], only["eval_crops"]) == ("paper_res79", "final", 1)


def test_a_directory_that_is_not_a_run_is_one_error_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: RUN_DIR {tmp_path / 'empty'} is not a training run")
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "eval.json").write_text("{not json")
    with pytest.raises(RunError, match="eval.json is not a readable JSON file"):
        run_records(str(tmp_path / "broken"))
