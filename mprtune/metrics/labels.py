"""Label metrics against a declared label set: accuracy, macro-F1, per-label F1, confusion matrix.

Each row has a gold label (index into the declared labels) and a predicted one: an index, or
:data:`NO_LABEL` when the answer names no declared label (out of the label set, nothing extracted,
or an empty output). Such a row is wrong for accuracy and a false negative of its gold label; it is
a false positive of no label (it names none).

Per-row statistics are one-hots ``[tp_1..k, fp_1..k, fn_1..k]`` (:func:`label_statistics`), so
macro-F1 and per-label F1 of any multiset of rows (a bootstrap resample) come from the summed
one-hots (:func:`per_label_f1`, :func:`macro_f1`), exactly as recomputed on those rows.
F1 of a label = 2 TP / (2 TP + FP + FN); undefined (NaN) for a label that neither the references
nor the predictions of the rows name. Macro-F1 is the mean over the labels where F1 is defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NO_LABEL = -1
OUT_OF_LABEL_COLUMN = "(out of label)"
NO_ANSWER_COLUMN = "(no answer)"


def label_statistics(gold: Sequence[int], predicted: Sequence[int], k: int) -> np.ndarray:
    """(rows, 3k) one-hots: tp, fp, fn per label (see the module docstring)."""
    g = np.asarray(gold, dtype=np.intp)
    p = np.asarray(predicted, dtype=np.intp)
    rows = np.arange(g.size)
    stats = np.zeros((g.size, 3 * k))
    right = p == g
    stats[rows[right], g[right]] = 1.0
    wrong_named = ~right & (p >= 0)
    stats[rows[wrong_named], k + p[wrong_named]] = 1.0
    stats[rows[~right], 2 * k + g[~right]] = 1.0
    return stats


def per_label_f1(summed: np.ndarray, k: int) -> np.ndarray:
    """(..., k) F1 per label from summed statistics (..., 3k); NaN where undefined."""
    summed = np.asarray(summed, dtype=np.float64)
    tp, fp, fn = summed[..., :k], summed[..., k : 2 * k], summed[..., 2 * k : 3 * k]
    denominator = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1.0), np.nan)


def macro_f1(summed: np.ndarray, k: int) -> np.ndarray:
    """(...) mean F1 over the labels where it is defined; NaN when none is."""
    f1 = per_label_f1(summed, k)
    defined = ~np.isnan(f1)
    count = defined.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, np.where(defined, f1, 0.0).sum(axis=-1) / np.maximum(count, 1), np.nan)


def confusion(
    labels: Sequence[str], gold: Sequence[int], predicted: Sequence[int], answered: Sequence[bool]
) -> dict[str, Any]:
    """Rows: gold labels; columns: the labels, then out of label (an answer naming none), then no
    answer (empty output or nothing extracted). `{"labels", "columns", "matrix"}` (counts)."""
    k = len(labels)
    matrix = [[0] * (k + 2) for _ in range(k)]
    for g, p, a in zip(gold, predicted, answered, strict=True):
        matrix[g][p if p >= 0 else (k if a else k + 1)] += 1
    return {"labels": list(labels), "columns": [*labels, OUT_OF_LABEL_COLUMN, NO_ANSWER_COLUMN], "matrix": matrix}
