"""The paper's results (Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer
Vision", arXiv 1512.00567) as data, and the recipe that reproduces each row (no TensorFlow here).

Table 3, single crop, cumulative rows (top-1 / top-5 error, cost in billions of operations):
Inception-v2 23.4% / - / 3.8; + RMSProp 23.1 / 6.3 / 3.8; + Label Smoothing 22.8 / 6.1 / 3.8;
+ Factorized 7x7 21.6 / 5.8 / 4.8; + BN-auxiliary 21.2 / 5.6 / 4.8 (= Inception-v3).
Table 2, receptive-field resolution at constant computational cost, top-1 accuracy: 299x299
76.6%, 151x151 76.4%, 79x79 75.2%.
Table 4: Inception-v3 with 12 crops 19.47% / 4.48%, with 144 crops 18.77% / 4.2%.
Table 5: an ensemble of 4 Inception-v3 models x 144 crops, 17.2% / 3.58% (3.58% on the test
set; 3.46% on validation).
The paper evaluates on the 48,238 non-blacklisted ILSVRC-2012 validation images (about 0.2%
worse top-1 on all 50,000).

`python -m inception_keras.paper [RUN_DIR ...]` prints these tables beside a project's runs.
"""

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a paper table: errors in percent (None where the paper prints none)."""

    label: str
    top1_error: Optional[float]
    top5_error: Optional[float]
    recipe: Optional[str] = None  # the recipe whose runs this row compares with
    cost: Optional[float] = None  # the paper's billions of operations (Table 3)
    eval_crops: int = 1


# Table 3 (single crop), the rows in the paper's order, each adding one change to the one above.
TABLE3 = (
    Row("Inception-v2", 23.4, None, "paper_v2", 3.8),
    Row("+ RMSProp", 23.1, 6.3, "paper_v2_rmsprop", 3.8),
    Row("+ Label Smoothing", 22.8, 6.1, "paper_v2_smoothing", 3.8),
    Row("+ Factorized 7x7", 21.6, 5.8, "paper_v2_factorized", 4.8),
    Row("+ BN-auxiliary (Inception-v3)", 21.2, 5.6, "paper", 4.8),
)
# Table 2 prints top-1 ACCURACY (76.6%), stored here as its error for one "error" column.
TABLE2 = (
    Row("299x299, stride 2, max-pool", 100 - 76.6, None, "paper"),
    Row("151x151, stride 1, max-pool", 100 - 76.4, None, "paper_res151"),
    Row("79x79, stride 1, no pooling", 100 - 75.2, None, "paper_res79"),
)
TABLE4 = (
    Row("Inception-v3, 12 crops", 19.47, 4.48, "paper", eval_crops=12),
    Row("Inception-v3, 144 crops", 18.77, 4.2, "paper", eval_crops=144),
)
# 3.58% top-5 is on the test set; the paper's validation figure is 3.46%, which this compares.
TABLE5 = (Row("4 x Inception-v3, 144 crops", 17.2, 3.46, "paper", eval_crops=144),)

@dataclasses.dataclass(frozen=True)
class Table:
    title: str
    rows: tuple
    accuracy: bool = False  # the paper prints top-1 accuracy (Table 2), not errors
    ensemble: bool = False  # compared with ensemble records (kind "ensemble")
    always: bool = False  # printed without runs too (its networks' costs)


TABLES = (
    Table("Table 3: single crop, one change per row (top-1 / top-5 error, %)", TABLE3,
          always=True),
    Table("Table 2: receptive-field resolution at about the same cost (top-1 accuracy, %)",
          TABLE2, accuracy=True, always=True),
    Table("Table 4: multi-crop evaluation (top-1 / top-5 error, %)", TABLE4),
    Table("Table 5: ensemble of 4 models, 144 crops (top-1 / top-5 error, %; validation)",
          TABLE5, ensemble=True),
)

# The recipes of the paper's rows, in the order of Table 3 then Table 2.
PAPER_RECIPES = tuple(row.recipe for row in TABLE3 + TABLE2[1:])


def target_line(recipe):
    """What `recipe` should reach per the paper, e.g. "Table 3: 23.1% / 6.3% top-1/top-5 error"."""
    for row in TABLE3:
        if row.recipe == recipe:
            top5 = f"{row.top5_error:g}%" if row.top5_error is not None else "-"
            return f"Table 3 {row.label}: {row.top1_error:g}% / {top5} top-1/top-5 error"
    for row in TABLE2:
        if row.recipe == recipe:
            return f"Table 2 {row.label}: {100 - row.top1_error:.1f}% top-1 accuracy"
    return None
