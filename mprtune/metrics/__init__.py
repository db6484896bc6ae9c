"""Evaluation metrics for mprtune: pure functions, no torch/transformers.

``METRICS`` (in :mod:`.registry`) documents every metric name, unit and direction;
:func:`improvement` turns two values (and a paired interval) into a verdict;
:func:`score_rows` / :func:`paired_diffs` / :func:`compare_rows` compute the metrics of a
task with bootstrap confidence intervals; :func:`per_row` gives the per-row tags. The
tokenization convention every grammar/paraphrase comparison follows is in :mod:`.tokens`.
"""

from .bootstrap import (
    bootstrap_ci,
    bootstrap_corpus_ci,
    paired_bootstrap_corpus_diff,
    paired_bootstrap_diff,
    resample_counts,
)
from .registry import METRICS, MetricSpec, improvement
from .scoring import N_RESAMPLES, compare_rows, paired_diffs, per_row, score_rows
from .tokens import as_references, detokenize

__all__ = [
    "METRICS",
    "MetricSpec",
    "N_RESAMPLES",
    "as_references",
    "bootstrap_ci",
    "bootstrap_corpus_ci",
    "compare_rows",
    "detokenize",
    "improvement",
    "paired_bootstrap_diff",
    "paired_bootstrap_corpus_diff",
    "paired_diffs",
    "per_row",
    "resample_counts",
    "score_rows",
]
