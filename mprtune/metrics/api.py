"""Metrics that compute themselves: one object per metric owns its computation, its rows and its resampling.

A metric returns a :class:`Computed`: its value on the rows it covers, how many rows that is, and
a vectorised statistic that maps a batch of bootstrap resample counts (resamples x rows) to one
value per resample. Every metric of a comparison, and both systems, are evaluated on the SAME
counts (:func:`.bootstrap.resample_counts`), so the paired bootstrap of :func:`compare_scores`
works for any metric unchanged: a per-row mean, a corpus score built from summed per-row
statistics (BLEU, chrF, macro-F1), or a plain corpus function recomputed on each resample.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mprtune.rows import ScoredRow

from .bootstrap import percentile_interval, resample_counts
from .registry import MetricSpec

N_RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass
class Computed:
    """A metric of one system: its value, the rows it covers and its statistic over resample counts."""

    value: float
    n: int
    statistic: Callable[[np.ndarray], np.ndarray]
    _last: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        # a comparison asks twice with the same counts (the system's CI, then the paired diff)
        if self._last is None or self._last[0] is not counts:
            self._last = (counts, self.statistic(counts))
        return self._last[1]


def mean_of(values: Sequence[float | bool | None]) -> Computed | None:
    """Mean over the rows whose value is not None (a rate when the values are booleans)."""
    index = np.array([i for i, v in enumerate(values) if v is not None], dtype=np.intp)
    if index.size == 0:
        return None
    v = np.array([float(values[i]) for i in index])  # None filtered out above

    def statistic(counts: np.ndarray) -> np.ndarray:
        picked = counts[:, index].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return picked @ v / picked.sum(axis=1)

    return Computed(float(v.mean()), int(index.size), statistic)


def ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray, index: np.ndarray) -> Computed | None:
    if index.size == 0 or denominator[index].sum() == 0:
        return None
    num, den = numerator[index], denominator[index]

    def statistic(counts: np.ndarray) -> np.ndarray:
        picked = counts[:, index].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return picked @ num / (picked @ den)

    return Computed(float(num.sum() / den.sum()), int(index.size), statistic)


def from_statistics(stats: np.ndarray, score: Callable[[np.ndarray], np.ndarray], index: np.ndarray) -> Computed | None:
    """A corpus score from summed per-row statistics: `score(sum of stats[index])`, resampled the same way.

    `stats` is (rows, k); `score` maps (..., k) summed statistics to (...) values (vectorised).
    """
    if index.size == 0:
        return None
    picked_stats = np.asarray(stats, dtype=np.float64)[index]

    def statistic(counts: np.ndarray) -> np.ndarray:
        return np.asarray(score(counts[:, index].astype(np.float64) @ picked_stats), dtype=np.float64)

    return Computed(float(score(picked_stats.sum(axis=0))), int(index.size), statistic)


def by_recomputing(function: Callable[[np.ndarray], float], index: np.ndarray) -> Computed | None:
    """A corpus score that cannot be vectorised: `function(row indices with repeats)`, called once per resample."""
    if index.size == 0:
        return None

    def statistic(counts: np.ndarray) -> np.ndarray:
        picked = counts[:, index]
        return np.array([function(np.repeat(index, row)) for row in picked], dtype=np.float64)

    return Computed(float(function(index)), int(index.size), statistic)


class Metric:
    """A registered metric: its definition and how it computes itself on one system's scored rows."""

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    def compute(self, rows: Sequence[ScoredRow]) -> Computed | None:
        raise NotImplementedError


class RowMetric(Metric):
    """Mean (a rate for booleans) of a per-row value over the rows where it is not None."""

    def __init__(self, spec: MetricSpec, value: Callable[[ScoredRow], float | bool | None]) -> None:
        super().__init__(spec)
        self.value = value

    def compute(self, rows: Sequence[ScoredRow]) -> Computed | None:
        return mean_of([self.value(row) for row in rows])


@dataclass
class SystemScores:
    """One system on a task's rows: the per-row view of every output and every metric it covers."""

    rows: list[ScoredRow]
    metrics: dict[str, Computed]
    # non-scalar results a kind reports beside its metrics (custom labels: {"confusion": {...}})
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.rows)


def compute_all(metrics: Sequence[Metric], rows: Sequence[ScoredRow]) -> dict[str, Computed]:
    """Every metric that covers at least one row (a metric with no rows to cover is left out)."""
    out = {}
    for metric in metrics:
        computed = metric.compute(rows)
        if computed is not None:
            out[metric.name] = computed
    return out


def _interval(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    if not np.isfinite(samples).any():
        return None, None
    return percentile_interval(samples, confidence)


def scores_of(system: Mapping[str, Computed], counts: np.ndarray | None, confidence: float) -> dict[str, dict]:
    """`{metric: {value, ci_low, ci_high, n}}`; intervals from `counts` (None: no intervals)."""
    out: dict[str, dict] = {}
    for name, metric in system.items():
        low = high = None
        if counts is not None:
            low, high = _interval(metric.resampled(counts), confidence)
        out[name] = {"value": metric.value, "ci_low": low, "ci_high": high, "n": metric.n}
    return out


def diffs_of(
    tuned: Mapping[str, Computed], baseline: Mapping[str, Computed], counts: np.ndarray, confidence: float
) -> dict[str, dict]:
    """Tuned minus baseline per metric both have, with the paired interval on the same counts."""
    out: dict[str, dict] = {}
    for name, t in tuned.items():
        b = baseline.get(name)
        if b is None:
            continue
        low, high = _interval(t.resampled(counts) - b.resampled(counts), confidence)
        out[name] = {"value": t.value - b.value, "ci_low": low, "ci_high": high}
    return out


def compare_scores(
    tuned: SystemScores,
    baseline: SystemScores,
    seed: int = 0,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """`{"baseline", "tuned", "diff", "baseline_rows", "tuned_rows"}`, every statistic on one set of resamples."""
    if tuned.n_rows != baseline.n_rows:
        raise ValueError("tuned and baseline outputs must have the same length")
    counts = resample_counts(tuned.n_rows, n_resamples, seed)
    return {
        "baseline": scores_of(baseline.metrics, counts, confidence),
        "tuned": scores_of(tuned.metrics, counts, confidence),
        "diff": diffs_of(tuned.metrics, baseline.metrics, counts, confidence),
        "baseline_rows": [r.tags for r in baseline.rows],
        "tuned_rows": [r.tags for r in tuned.rows],
    }
