"""Paraphrase metrics: corpus BLEU, self-BLEU, iBLEU and copy rate.

BLEU is sacrebleu's corpus BLEU with its defaults (13a tokenisation, exp smoothing,
case-sensitive), 0-100 scale. sacrebleu is imported lazily to keep this module cheap.

Varying reference counts: sacrebleu needs equally long reference streams, so a row with
fewer references than the longest row is padded by repeating ITS FIRST reference. BLEU
clips n-gram counts by the maximum count over references and uses the closest reference
length, so a duplicated reference changes neither and the padding is score-neutral.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .text import normalize_ws

if TYPE_CHECKING:  # pragma: no cover
    from sacrebleu.metrics import BLEU

IBLEU_ALPHA = 0.8


def _ref_streams(references: Sequence[Sequence[str]]) -> list[list[str]]:
    """Row-major references -> sacrebleu's reference streams (one list per reference
    slot), padding short rows with their first reference."""
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every row needs at least one reference")
    width = max((len(refs) for refs in references), default=1)
    return [[refs[k] if k < len(refs) else refs[0] for refs in references] for k in range(width)]


def _bleu_metric() -> "BLEU":
    from sacrebleu.metrics import BLEU  # lazy: sacrebleu import costs ~0.1 s
    # force=True only silences sacrebleu's "tokenized period" warning (GEC-style data is
    # pre-tokenised); it does not change any statistic.
    return BLEU(force=True)


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu defaults, 0-100) of ``hypotheses``; ``references[i]`` lists
    row i's references (padded as in the module docstring). higher_is_better: True."""
    if len(hypotheses) != len(references):
        raise ValueError("hypotheses and references must have the same length")
    return float(_bleu_metric().corpus_score(list(hypotheses), _ref_streams(references)).score)


def self_bleu(hypotheses: Sequence[str], sources: Sequence[str]) -> float:
    """Corpus BLEU of ``hypotheses`` with each row's source as the only reference.
    Measures copying; higher_is_better: False."""
    return bleu(hypotheses, [[s] for s in sources])


def ibleu(bleu_score: float, self_bleu_score: float, alpha: float = IBLEU_ALPHA) -> float:
    """iBLEU (Sun & Zhou 2012) = ``alpha * bleu - (1 - alpha) * self_bleu``.
    higher_is_better: True."""
    return alpha * bleu_score - (1.0 - alpha) * self_bleu_score


def is_copy(output: str, source: str) -> bool:
    """True iff output equals source after whitespace normalisation (case-sensitive)."""
    return normalize_ws(output) == normalize_ws(source)


def copy_rate(outputs: Sequence[str], sources: Sequence[str]) -> float:
    """Fraction of rows where :func:`is_copy` holds. higher_is_better: False."""
    if len(outputs) != len(sources):
        raise ValueError("outputs and sources must have the same length")
    if not outputs:
        raise ValueError("no rows")
    return sum(is_copy(o, s) for o, s in zip(outputs, sources)) / len(outputs)


class CorpusBleu:
    """Per-row sacrebleu BLEU statistics, so corpus BLEU of any multiset of rows (a
    bootstrap resample) is a sum of precomputed vectors: identical to sacrebleu's
    ``corpus_score`` on those rows, without re-tokenising."""

    def __init__(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        if len(hypotheses) != len(references):
            raise ValueError("hypotheses and references must have the same length")
        self._metric = _bleu_metric()
        self.stats = np.asarray(
            self._metric._extract_corpus_statistics(list(hypotheses), _ref_streams(references)),
            dtype=np.int64).reshape(len(hypotheses), -1)

    def score(self, rows: np.ndarray | None = None) -> float:
        """Corpus BLEU over ``rows`` (indices, repeats allowed; default all)."""
        picked = self.stats if rows is None else self.stats[np.asarray(rows, dtype=np.intp)]
        return float(self._metric._compute_score_from_stats(picked.sum(axis=0).tolist()).score)
