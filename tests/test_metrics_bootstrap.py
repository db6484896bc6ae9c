import numpy as np
import pytest

from mprtune.metrics.bootstrap import (
    bootstrap_ci,
    bootstrap_corpus_ci,
    paired_bootstrap_corpus_diff,
    paired_bootstrap_diff,
    percentile_interval,
    resample_counts,
)


def test_mean_is_sample_mean_and_constant_values_have_zero_width():
    mean, low, high = bootstrap_ci([0, 1, 1, 0, 1])
    assert mean == pytest.approx(0.6)  # 3 / 5
    assert low < 0.6 < high
    assert bootstrap_ci([2.5, 2.5, 2.5]) == (2.5, 2.5, 2.5)


def test_percentiles_on_two_point_distribution():
    # values [0, 1]: a resample mean is 0, 0.5, 1 with prob 1/4, 1/2, 1/4.
    # 95%: percentiles 2.5 and 97.5 -> 0 and 1. 40%: percentiles 30 and 70 -> both 0.5.
    assert bootstrap_ci([0, 1], n_resamples=2000)[1:] == (0.0, 1.0)
    assert bootstrap_ci([0, 1], n_resamples=2000, confidence=0.4)[1:] == (0.5, 0.5)


def test_deterministic_with_seed():
    vals = np.random.default_rng(5).normal(size=50)
    assert bootstrap_ci(vals, seed=3) == bootstrap_ci(vals, seed=3)
    assert bootstrap_ci(vals, seed=3) != bootstrap_ci(vals, seed=4)


def test_ci_narrows_with_more_data():
    rng = np.random.default_rng(1)
    _, lo_small, hi_small = bootstrap_ci(rng.normal(size=20))
    mean, lo_big, hi_big = bootstrap_ci(rng.normal(size=2000))
    assert lo_big < mean < hi_big
    # width ~ 3.92 / sqrt(n): ~0.88 for 20 rows vs ~0.09 for 2000
    assert (hi_big - lo_big) < 0.3 * (hi_small - lo_small)


def test_paired_diff_sign_and_pairing():
    rng = np.random.default_rng(2)
    base = rng.normal(size=200) * 10  # large between-row spread...
    tuned = base + 0.5 + rng.normal(size=200) * 0.1  # ...small consistent gain
    diff, low, high = paired_bootstrap_diff(tuned, base)
    assert diff == pytest.approx(float(np.mean(tuned - base)))
    assert 0 < low < diff < high  # pairing removes the row spread: clearly positive
    neg, nlow, nhigh = paired_bootstrap_diff(base, tuned)
    assert neg == pytest.approx(-diff) and nhigh < 0
    with pytest.raises(ValueError):
        paired_bootstrap_diff([1, 2], [1])


def test_corpus_ci_ratio_of_sums():
    num = np.array([1.0, 2.0, 3.0, 4.0])
    den = np.array([2.0, 2.0, 2.0, 2.0])

    def ratio(ix):
        return float(num[ix].sum() / den[ix].sum())

    value, low, high = bootstrap_corpus_ci(4, ratio, n_resamples=300)
    assert value == pytest.approx(10 / 8)  # (1+2+3+4) / (2*4)
    assert 0.5 <= low < value < high <= 2.0  # ratio bounded by min/max row ratio
    assert bootstrap_corpus_ci(4, ratio, seed=7) == bootstrap_corpus_ci(4, ratio, seed=7)


def test_paired_corpus_diff_uses_same_rows():
    a = np.arange(1.0, 101.0)

    def tuned(ix):
        return float(a[ix].sum() + len(ix))  # exactly one more per row than baseline

    def baseline(ix):
        return float(a[ix].sum())

    # tuned - baseline = len(ix) = 100 on EVERY resample only if both see the same rows
    assert paired_bootstrap_corpus_diff(100, tuned, baseline) == (100.0, 100.0, 100.0)


def test_empty_values_rejected():
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_resample_counts_are_row_draws_with_replacement():
    counts = resample_counts(7, 500, seed=2)
    assert counts.shape == (500, 7) and (counts.sum(axis=1) == 7).all() and counts.min() >= 0
    assert (counts == resample_counts(7, 500, seed=2)).all()
    assert not (counts == resample_counts(7, 500, seed=3)).all()
    # each row is drawn 7 * 1/7 = 1 time per resample on average
    assert counts.mean(axis=0) == pytest.approx(np.ones(7), abs=0.15)
    # the same draws as bootstrap_ci: a mean over counts is the resampled mean
    values = np.arange(7.0)
    low, high = percentile_interval(counts @ values / 7, 0.95)
    assert (low, high) == bootstrap_ci(values, n_resamples=500, seed=2)[1:]
