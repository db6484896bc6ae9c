"""Paraphrase metrics: corpus BLEU, self-BLEU, iBLEU and copy rate.

BLEU is sacrebleu's corpus BLEU with its defaults (13a tokenisation, case-sensitive, "exp"
smoothing, brevity penalty against the closest reference length), on the 0-100 scale.
:class:`CorpusBleu` computes it from per-row sufficient statistics (hypothesis length, closest
reference length, clipped n-gram matches and n-gram totals, n = 1..4) so that any multiset of
rows (a bootstrap resample) is a sum of precomputed vectors. Only sacrebleu's public 13a
tokenizer is used; counting and scoring follow sacrebleu 2.x's definition and are checked against
its public ``corpus_score`` in the tests (pinned ``sacrebleu<3`` in pyproject.toml).

Several references: n-gram counts are clipped by the maximum count over the row's references,
the reference length is the closest to the hypothesis (ties: the shorter), exactly as sacrebleu
does with reference streams (where a row with fewer references is padded by repeating one, which
changes neither). An empty reference line is a reference (length 0, no n-grams).

What is compared (see :mod:`.tokens`): :mod:`.scoring` passes the hypothesis written the way the
row's source and references are tokenized, so copy rate, self-BLEU and BLEU agree on what a copy
is (a copy of a PTB-tokenized PAWS source written with normal punctuation is a copy).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from .text import normalize_ws
from .tokens import as_references

IBLEU_ALPHA = 0.8
ORDER = 4
N_STATS = 2 + 2 * ORDER  # sys_len, ref_len, correct_1..4, total_1..4 (sacrebleu's layout)


@lru_cache(maxsize=1)
def _tokenizer_13a() -> Callable[[str], str]:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a  # lazy: ~0.1 s

    return Tokenizer13a()


def _tokens(text: str) -> list[str]:
    # sacrebleu's preprocessing: rstrip, then 13a (lowercase off by default)
    return _tokenizer_13a()(text.rstrip()).split()


def _ngrams(tokens: list[str]) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for n in range(1, ORDER + 1) for i in range(len(tokens) - n + 1))


def row_statistics(hypothesis: str, references: Sequence[str]) -> list[int]:
    """sacrebleu's segment statistics ``[sys_len, ref_len, correct_1..4, total_1..4]`` of one
    hypothesis against its references (see the module docstring)."""
    if not references:
        raise ValueError("every row needs at least one reference")
    ref_counts: Counter = Counter()
    best_len: int | None = None
    hyp = _tokens(hypothesis)
    for ref in references:
        ref_tok = _tokens(ref)
        for gram, count in _ngrams(ref_tok).items():
            if count > ref_counts[gram]:
                ref_counts[gram] = count
        gap = abs(len(hyp) - len(ref_tok))
        if (
            best_len is None
            or gap < abs(len(hyp) - best_len)
            or (gap == abs(len(hyp) - best_len) and len(ref_tok) < best_len)
        ):
            best_len = len(ref_tok)
    correct, total = [0] * ORDER, [0] * ORDER
    for gram, count in _ngrams(hyp).items():
        total[len(gram) - 1] += count
        correct[len(gram) - 1] += min(count, ref_counts.get(gram, 0))
    assert best_len is not None  # every row has at least one reference (checked by the callers)
    return [len(hyp), best_len] + correct + total


def bleu_from_stats(stats: np.ndarray) -> np.ndarray:
    """BLEU (0-100) of summed statistics, shape (..., 10): sacrebleu's ``compute_bleu`` with
    "exp" smoothing (the k-th order with no match counts as precision 1 / (2**k * total))."""
    stats = np.asarray(stats, dtype=np.float64)
    sys_len, ref_len = stats[..., 0], stats[..., 1]
    correct, total = stats[..., 2 : 2 + ORDER], stats[..., 2 + ORDER :]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(
            sys_len < ref_len,
            np.where(sys_len > 0, np.exp(1.0 - ref_len / np.where(sys_len > 0, sys_len, 1.0)), 0.0),
            1.0,
        )
        zero_run = np.cumsum(correct == 0, axis=-1)  # k-th unmatched order halves again
        precision = np.where(correct > 0, correct / total, 1.0 / (2.0**zero_run * total))
        log_mean = np.log(precision).mean(axis=-1)
    # an order with no n-grams at all stops sacrebleu's loop: the remaining precisions are 0
    defined = np.all(total > 0, axis=-1) & np.any(correct > 0, axis=-1)
    return np.where(defined, 100.0 * bp * np.exp(np.where(defined, log_mean, 0.0)), 0.0)


class CorpusBleu:
    """Per-row BLEU statistics; corpus BLEU of all rows, of row indices, or of a batch of
    resample counts, identical to sacrebleu's ``corpus_score`` on those rows."""

    def __init__(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        if len(hypotheses) != len(references):
            raise ValueError("hypotheses and references must have the same length")
        self.stats = np.array(
            [row_statistics(h, refs) for h, refs in zip(hypotheses, references, strict=False)], dtype=np.int64
        ).reshape(len(hypotheses), N_STATS)

    def score(self, rows: np.ndarray | None = None) -> float:
        """Corpus BLEU over ``rows`` (indices, repeats allowed; default all)."""
        picked = self.stats if rows is None else self.stats[np.asarray(rows, dtype=np.intp)]
        return float(bleu_from_stats(picked.sum(axis=0)))

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """Corpus BLEU of each resample; ``counts`` (resamples, rows) as in
        :func:`.bootstrap.resample_counts`."""
        return bleu_from_stats(np.asarray(counts, dtype=np.float64) @ self.stats)


def bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu defaults, 0-100) of ``hypotheses``; ``references[i]`` lists row i's
    references (their number may vary). Higher is better."""
    return CorpusBleu(hypotheses, references).score()


def self_bleu(hypotheses: Sequence[str], sources: Sequence[str]) -> float:
    """Corpus BLEU of ``hypotheses`` with each row's source as the only reference.
    Measures copying; lower is better."""
    return bleu(hypotheses, [[s] for s in sources])


def ibleu(bleu_score: float, self_bleu_score: float, alpha: float = IBLEU_ALPHA) -> float:
    """iBLEU (Sun & Zhou 2012) = ``alpha * bleu - (1 - alpha) * self_bleu``. Higher is better."""
    return alpha * bleu_score - (1.0 - alpha) * self_bleu_score


def is_copy(output: str, source: str) -> bool:
    """True iff the output, written the way the source is tokenized (:mod:`.tokens`), equals
    the source after whitespace normalisation (case-sensitive)."""
    return as_references(output, source, []) == normalize_ws(source)


def copy_rate(outputs: Sequence[str], sources: Sequence[str]) -> float:
    """Fraction of rows where :func:`is_copy` holds. Lower is better."""
    if len(outputs) != len(sources):
        raise ValueError("outputs and sources must have the same length")
    if not outputs:
        raise ValueError("no rows")
    return sum(is_copy(o, s) for o, s in zip(outputs, sources, strict=False)) / len(outputs)
