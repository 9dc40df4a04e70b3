r"""Print the paper's tables with this project's runs beside them.

    python -m inception_keras.paper                       # every rung's cost, before training
    python -m inception_keras.paper runs/paper_v2 runs/paper runs/paper_res79 --markdown

For each RUN_DIR (a training run's --model_dir) it reads `eval.json` and `evaluations/*.json`
(the evaluation records), finds each record's table row by its recipe (the record's "config",
else config.json's "name"), crops and kind, and prints "paper | this project | difference" with
each network's parameters and multiply-adds (main head, 1000 classes, at its input size, from
`build_inception_v3`). Where several records fit one row, the one of the latest step counts.
Exit status: 0 printed, 2 a RUN_DIR that is not a run (one `error:` line).
"""

import argparse
import glob
import json
import os
import sys

from inception_keras.paper import TABLE2, TABLE3, TABLES

USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(USER_ERROR, f"error: {message} (see python -m inception_keras.paper --help)\n")


def parse_flags(argv):
    parser = _Parser(prog="python -m inception_keras.paper",
                     description="The paper's Tables 3, 2, 4 and 5 beside this project's runs.",
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="a training run's --model_dir (holds config.json, eval.json)")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables instead of text")
    return parser.parse_args(argv)


class RunError(ValueError):
    """A RUN_DIR that cannot be read as a run."""


def _read_json(path):
    try:
        with open(path) as file:
            value = json.load(file)
    except (OSError, ValueError) as error:
        raise RunError(f"{path} is not a readable JSON file ({error})") from None
    if not isinstance(value, dict):
        raise RunError(f"{path} holds no JSON object")
    return value


def run_records(run_dir):
    """The evaluation records of `run_dir`, each with its "config" (recipe) and "kind" filled."""
    config_path, eval_path = (os.path.join(run_dir, name) for name in ("config.json", "eval.json"))
    others = sorted(glob.glob(os.path.join(run_dir, "evaluations", "*.json")))
    if not os.path.isdir(run_dir) or not (os.path.exists(config_path) or
                                          os.path.exists(eval_path) or others):
        raise RunError(f"RUN_DIR {run_dir} is not a training run (no config.json, eval.json or "
                       "evaluations/): pass the --model_dir of a run")
    name = _read_json(config_path).get("name") if os.path.exists(config_path) else None
    records = []
    for path, kind in [(eval_path, "final")] * os.path.exists(eval_path) + \
            [(path, "eval_only") for path in others]:
        record = _read_json(path)
        if not {"top1", "top5"} <= set(record):
            raise RunError(f"{path} is not an evaluation record (no top1/top5)")
        records.append({"kind": kind, "config": name, "eval_crops": 1, "step": 0, **record,
                        "path": path})
    return records


def row_record(table, row, records):
    """The record `row` of `table` compares with: its recipe, crops and kind; the latest step."""
    fits = [r for r in records if r.get("config") == row.recipe
            and r.get("eval_crops") == row.eval_crops
            and (r.get("kind") == "ensemble") == table.ensemble]
    return max(fits, key=lambda r: (r.get("step") or 0, r.get("examples") or 0), default=None)


def network_costs(recipe, cache):
    """(parameters, multiply-adds) of `recipe`'s network: main head, 1000 classes, its input."""
    from configs import get_config

    config = get_config(recipe)
    key = (config.stem, config.receptive_field, config.image_size)
    if key not in cache:
        from inception_keras.models.complexity import multiply_adds
        from inception_keras.models.inception_v3 import build_inception_v3

        model = build_inception_v3(include_aux=False, stem=config.stem,
                                   receptive_field=config.receptive_field,
                                   input_shape=(config.image_size, config.image_size, 3))
        cache[key] = (model.count_params(), multiply_adds(model))
    return cache[key]


def _pair(top1, top5):
    return f"{top1:.2f}" + (f" / {top5:.2f}" if top5 is not None else "")


def table_rows(table, records, cache):
    """The printed cells of `table`'s rows (None when neither runs nor costs apply to it)."""
    cells = []
    for row in table.rows:
        record = row_record(table, row, records)
        if record is None and not table.always:
            continue
        paper = (100 - row.top1_error, None) if table.accuracy else (row.top1_error,
                                                                     row.top5_error)
        ours = diff = "-"
        if record is not None:
            top1, top5 = 100 * record["top1"], 100 * record["top5"]
            mine = (top1, None) if table.accuracy else (100 - top1, 100 - top5)
            ours = _pair(*mine) + f" ({record['examples']} images, step {record['step']})" \
                if "examples" in record else _pair(*mine)
            diff = _pair(mine[0] - paper[0], None if paper[1] is None else mine[1] - paper[1])
            diff = "+" + diff if not diff.startswith("-") else diff
        params, macs = network_costs(row.recipe, cache)
        paper_text = "-" if paper[0] is None else (
            f"{paper[0]:.2f}" + (f" / {paper[1]:.2f}" if paper[1] is not None else
                                 (" / -" if not table.accuracy else "")))
        cells.append([row.label, row.recipe, paper_text, ours, diff, f"{params / 1e6:.2f}M",
                      f"{macs / 1e9:.3f}G", f"{row.cost:g}G" if row.cost else "-"])
    return cells or None


HEADER = ["row", "recipe", "paper", "this project", "difference", "parameters",
          "multiply-adds", "paper's cost"]


def render(title, cells, markdown):
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(HEADER) + " |",
                 "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [HEADER] + cells) for i in range(len(HEADER))]
    lines = [HEADER] + cells
    return "\n".join([title] + ["  ".join(cell.ljust(width) for cell, width in
                                          zip(row, widths)).rstrip() for row in lines])


def ratios(cache):
    """Our cost ratios beside the paper's (v2/v3: 3.8/4.8; Table 2: "almost identical")."""
    v3, v2, r151, r79 = (network_costs(recipe, cache)[1] for recipe in (
        TABLE3[-1].recipe, TABLE3[0].recipe, TABLE2[1].recipe, TABLE2[2].recipe))
    return [f"cost ratios (multiply-adds): v2/v3 {v2 / v3:.3f} (paper 3.8/4.8 = {3.8 / 4.8:.3f}); "
            f"151/299 {r151 / v3:.3f}, 79/299 {r79 / v3:.3f} (paper: \"almost identical\", the "
            "79 network \"slightly cheaper\")",
            "differences: this project minus the paper (positive error: worse; positive accuracy: "
            "better); the paper scores 48,238 validation images (about 0.2% worse top-1 on all "
            "50,000)"]


def main(argv=None):
    flags = parse_flags(sys.argv[1:] if argv is None else argv)
    try:
        records = [record for run_dir in flags.run_dirs for record in run_records(run_dir)]
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return USER_ERROR
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cache, blocks = {}, []
    for table in TABLES:
        cells = table_rows(table, records, cache)
        if cells:
            blocks.append(render(table.title, cells, flags.markdown))
    notes = ratios(cache)
    blocks.append("\n".join(f"- {note}" for note in notes) if flags.markdown else "\n".join(notes))
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
