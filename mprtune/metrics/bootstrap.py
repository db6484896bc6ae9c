"""Percentile-bootstrap confidence intervals (numpy, deterministic given ``seed``).

One resample is a draw of n row indices with replacement; it is represented by its COUNTS
(how often each row was drawn, :func:`resample_counts`), so that every statistic, row-level or
corpus-level, is evaluated on a whole batch of resamples with one matrix product: a mean is
``counts @ values / n``, a corpus metric sums ``counts @ per-row statistics`` (GLEU, BLEU, ratios
of sums). Paired comparisons apply the SAME counts to both systems, so row difficulty cancels
out. The point estimate is always the statistic on the original data; the interval is the
(1-confidence)/2 and (1+confidence)/2 percentiles of the resampled values (NaN-aware: a ratio can
be undefined on a resample that drew none of its rows).

The helpers with explicit callables (:func:`bootstrap_corpus_ci`, ...) stay for statistics that
cannot be vectorised; :mod:`.scoring` uses the counts directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], float]
_BLOCK = 1000  # resamples drawn at once


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The equal-tailed percentile interval of ``samples`` (NaNs ignored)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.nanpercentile(np.asarray(samples, dtype=np.float64), [tail, 100.0 - tail])
    return float(low), float(high)


def _index_samples(n_rows: int, n_resamples: int, seed: int) -> np.ndarray:
    if n_rows < 1:
        raise ValueError("need at least one row")
    return np.random.default_rng(seed).integers(0, n_rows, size=(n_resamples, n_rows))


def resample_counts(n_rows: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """``(n_resamples, n_rows)`` int32: how often each row was drawn in each resample of
    ``n_rows`` rows with replacement. Deterministic for a seed; drawn in blocks so that memory
    stays at the counts themselves."""
    if n_rows < 1:
        raise ValueError("need at least one row")
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n_rows), dtype=np.int32)
    for a in range(0, n_resamples, _BLOCK):
        m = min(_BLOCK, n_resamples - a)
        flat = rng.integers(0, n_rows, size=(m, n_rows)) + (np.arange(m, dtype=np.int64) * n_rows)[:, None]
        counts[a : a + m] = np.bincount(flat.ravel(), minlength=m * n_rows).reshape(m, n_rows)
    return counts


def _values(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("need a non-empty 1-D sequence of values")
    return arr


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the sample mean and its percentile-bootstrap interval from
    ``n_resamples`` resamples of the values with replacement."""
    arr = _values(values)
    means = resample_counts(arr.size, n_resamples, seed) @ arr / arr.size
    return (float(arr.mean()), *percentile_interval(means, confidence))


def paired_bootstrap_diff(
    tuned_values: Sequence[float],
    baseline_values: Sequence[float],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(mean(tuned - baseline), low, high)`` resampling row indices jointly for both
    systems (equivalently, bootstrapping the per-row differences)."""
    tuned, base = _values(tuned_values), _values(baseline_values)
    if tuned.shape != base.shape:
        raise ValueError("tuned and baseline must have the same length")
    return bootstrap_ci(tuned - base, n_resamples, confidence, seed)


def bootstrap_corpus_ci(
    n_rows: int, statistic: Statistic, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(statistic(all rows), low, high)`` where ``statistic`` maps an array of row
    indices (with repeats) to a corpus-level value, recomputed on each resample."""
    full = float(statistic(np.arange(n_rows)))
    samples = np.array([statistic(ix) for ix in _index_samples(n_rows, n_resamples, seed)], dtype=np.float64)
    return (full, *percentile_interval(samples, confidence))


def paired_bootstrap_corpus_diff(
    n_rows: int,
    tuned_statistic: Statistic,
    baseline_statistic: Statistic,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(tuned(all) - baseline(all), low, high)`` with both corpus statistics recomputed
    on the SAME resampled row indices."""
    return bootstrap_corpus_ci(
        n_rows, lambda ix: tuned_statistic(ix) - baseline_statistic(ix), n_resamples, confidence, seed
    )
