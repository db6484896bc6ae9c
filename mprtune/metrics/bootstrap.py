"""Percentile-bootstrap confidence intervals (numpy, deterministic given ``seed``).

Row-level metrics resample per-row values; corpus-level metrics (GLEU, BLEU, ratios of
sums) resample row indices and recompute the statistic. Paired variants draw ONE index
sample per resample and apply it to both systems, so row difficulty cancels out.
The point estimate returned first is always the statistic on the original data; the
interval is the (1-confidence)/2 and (1+confidence)/2 percentiles of the resamples.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], float]


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    tail = (1.0 - confidence) / 2.0 * 100.0
    # nan-aware: a corpus ratio can be undefined on a degenerate resample.
    low, high = np.nanpercentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def _values(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("need a non-empty 1-D sequence of values")
    return arr


def bootstrap_ci(values: Sequence[float], n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the sample mean and its percentile-bootstrap interval from
    ``n_resamples`` resamples of the values with replacement."""
    arr = _values(values)
    idx = np.random.default_rng(seed).integers(0, arr.size, size=(n_resamples, arr.size))
    return (float(arr.mean()), *_percentiles(arr[idx].mean(axis=1), confidence))


def paired_bootstrap_diff(tuned_values: Sequence[float], baseline_values: Sequence[float],
                          n_resamples: int = 1000, confidence: float = 0.95,
                          seed: int = 0) -> tuple[float, float, float]:
    """``(mean(tuned - baseline), low, high)`` resampling row indices jointly for both
    systems (equivalently, bootstrapping the per-row differences)."""
    tuned, base = _values(tuned_values), _values(baseline_values)
    if tuned.shape != base.shape:
        raise ValueError("tuned and baseline must have the same length")
    return bootstrap_ci(tuned - base, n_resamples, confidence, seed)


def _index_samples(n_rows: int, n_resamples: int, seed: int) -> np.ndarray:
    if n_rows < 1:
        raise ValueError("need at least one row")
    return np.random.default_rng(seed).integers(0, n_rows, size=(n_resamples, n_rows))


def bootstrap_corpus_ci(n_rows: int, statistic: Statistic, n_resamples: int = 200,
                        confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(statistic(all rows), low, high)`` where ``statistic`` maps an array of row
    indices (with repeats) to a corpus-level value, recomputed on each resample."""
    full = float(statistic(np.arange(n_rows)))
    samples = np.array([statistic(ix) for ix in _index_samples(n_rows, n_resamples, seed)],
                       dtype=np.float64)
    return (full, *_percentiles(samples, confidence))


def paired_bootstrap_corpus_diff(n_rows: int, tuned_statistic: Statistic,
                                 baseline_statistic: Statistic, n_resamples: int = 200,
                                 confidence: float = 0.95,
                                 seed: int = 0) -> tuple[float, float, float]:
    """``(tuned(all) - baseline(all), low, high)`` with both corpus statistics recomputed
    on the SAME resampled row indices."""
    return bootstrap_corpus_ci(
        n_rows, lambda ix: tuned_statistic(ix) - baseline_statistic(ix), n_resamples,
        confidence, seed)
