"""Evaluation metrics for mprtune: pure functions, no torch/transformers.

``METRICS`` (in :mod:`.registry`) documents every metric name; :func:`score_rows` computes
them for a task, with bootstrap confidence intervals.
"""

from .bootstrap import (bootstrap_ci, bootstrap_corpus_ci, paired_bootstrap_corpus_diff,
                        paired_bootstrap_diff)
from .registry import METRICS, MetricSpec
from .scoring import paired_diffs, per_row, score_rows

__all__ = [
    "METRICS", "MetricSpec", "bootstrap_ci", "bootstrap_corpus_ci", "paired_bootstrap_diff",
    "paired_bootstrap_corpus_diff", "paired_diffs", "per_row", "score_rows",
]
