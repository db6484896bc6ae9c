"""chrF and BLEU through sacrebleu, as per-row statistics so that any resample is a sum.

chrF is sacrebleu's ``CHRF()`` with its defaults (character 6-grams, no word n-grams, beta 2,
case-sensitive, whitespace ignored, effective-order averaging), 0-100 points. Each row's
statistics are sacrebleu's own segment statistics (``[hyp, ref, match]`` per order, best
reference by segment chrF); :func:`chrf_from_stats` is sacrebleu's corpus formula vectorised over
summed statistics, checked against ``CHRF().corpus_score`` in the tests. BLEU uses the statistics
of :mod:`.paraphrase` (sacrebleu's 13a BLEU, checked there).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from .paraphrase import N_STATS as BLEU_STATS
from .paraphrase import bleu_from_stats, row_statistics

CHAR_ORDER, WORD_ORDER, BETA = 6, 0, 2
CHRF_STATS = 3 * (CHAR_ORDER + WORD_ORDER)

__all__ = ["BLEU_STATS", "CHRF_STATS", "bleu_from_stats", "bleu_statistics", "chrf_from_stats", "chrf_statistics"]


@lru_cache(maxsize=1)
def _chrf() -> Any:
    from sacrebleu.metrics.chrf import CHRF  # lazy: sacrebleu imports in ~0.1 s

    return CHRF(char_order=CHAR_ORDER, word_order=WORD_ORDER, beta=BETA)


def chrf_statistics(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """(rows, 18) sacrebleu segment statistics of each hypothesis against its references."""
    out = np.zeros((len(hypotheses), CHRF_STATS))
    for i, (hyp, refs) in enumerate(zip(hypotheses, references, strict=True)):
        out[i] = _segment(hyp, tuple(refs))
    return out


@lru_cache(maxsize=1 << 16)
def _reference_info(references: tuple[str, ...]) -> Any:
    # both systems of a comparison score the same rows: their references are read once
    chrf = _chrf()
    return chrf._extract_reference_info([chrf._preprocess_segment(r) for r in references])


@lru_cache(maxsize=1 << 16)
def _segment(hypothesis: str, references: tuple[str, ...]) -> tuple[int, ...]:
    # an output both systems wrote (or a repeated label) is counted once
    chrf = _chrf()
    return tuple(chrf._compute_segment_statistics(chrf._preprocess_segment(hypothesis), _reference_info(references)))


def chrf_from_stats(summed: np.ndarray) -> np.ndarray:
    """chrF (0-100) of summed statistics (..., 18): sacrebleu's effective-order formula."""
    stats = np.asarray(summed, dtype=np.float64)
    order = stats.shape[-1] // 3
    n_hyp, n_ref, n_match = stats[..., 0::3], stats[..., 1::3], stats[..., 2::3]
    effective = (n_hyp > 0) & (n_ref > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(effective, n_match / np.where(n_hyp > 0, n_hyp, 1.0), 0.0)
        recall = np.where(effective, n_match / np.where(n_ref > 0, n_ref, 1.0), 0.0)
        count = effective.sum(axis=-1)
        avg_p = np.where(count > 0, precision.sum(axis=-1) / np.maximum(count, 1), 0.0)
        avg_r = np.where(count > 0, recall.sum(axis=-1) / np.maximum(count, 1), 0.0)
        factor = BETA**2
        denominator = factor * avg_p + avg_r
        score = np.where(
            denominator > 0, (1 + factor) * avg_p * avg_r / np.where(denominator > 0, denominator, 1.0), 0.0
        )
    assert order == CHAR_ORDER + WORD_ORDER
    return 100.0 * score


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """(rows, 10) sacrebleu BLEU statistics (13a), see :mod:`.paraphrase`."""
    stats = [row_statistics(h, refs) for h, refs in zip(hypotheses, references, strict=True)]
    return np.array(stats, dtype=np.float64).reshape(len(hypotheses), BLEU_STATS)
