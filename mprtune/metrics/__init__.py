"""Evaluation metrics for mprtune: pure functions, no torch/transformers.

``METRICS`` (in :mod:`.registry`) documents every metric name, unit and direction;
:func:`improvement` turns two values (and a paired interval) into a verdict;
:func:`score_rows` / :func:`paired_diffs` / :func:`compare_rows` compute the metrics of a
task with bootstrap confidence intervals; :func:`per_row` gives the per-row tags. The
tokenization convention every grammar/paraphrase comparison follows is in :mod:`.tokens`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Re-exports, imported on first use: the matrix reads metric definitions (registry.py) when it loads,
# and `render` must not pay for numpy, nltk and sacrebleu to do so.
_EXPORTS = {
    "bootstrap_ci": "bootstrap",
    "bootstrap_corpus_ci": "bootstrap",
    "paired_bootstrap_corpus_diff": "bootstrap",
    "paired_bootstrap_diff": "bootstrap",
    "resample_counts": "bootstrap",
    "METRICS": "registry",
    "MetricSpec": "registry",
    "improvement": "registry",
    "N_RESAMPLES": "scoring",
    "compare_rows": "scoring",
    "paired_diffs": "scoring",
    "per_row": "scoring",
    "score_rows": "scoring",
    "as_references": "tokens",
    "detokenize": "tokens",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
