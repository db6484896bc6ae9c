"""GLEU for grammatical error correction, exactly as the official JFLEG scorer.

Reference implementation: ``gleu.py`` / ``compute_gleu`` of Napoles et al. (2015,
"Ground Truth for Grammatical Error Correction Metrics"), revised 2016, as shipped with
JFLEG. Definition (higher is better; reported on the 0-100 scale, like the published "40.54",
BLEU and sacrebleu: the official script prints 0-1):

- Tokens are ``line.split()``: case-sensitive, no other normalisation.
- For a hypothesis H, its source S and ONE reference R, and n = 1..4::

      num_n = max(0, |ng_n(H) & ng_n(R)| - |ng_n(H) & D_n|)
      den_n = max(0, len(H) - n + 1)

  where ``&`` is multiset (Counter) intersection and D_n holds the n-grams of S whose
  *type* does not occur in R at all, with their S counts. (This is what the official
  ``get_ngram_diff`` does: it deletes every key present in R, it is NOT the multiset
  difference S - R; only the key-based version reproduces the published figures.)
  The sentence statistics are ``(c, r, num_1, den_1, ..., num_4, den_4)`` with
  c = len(H), r = len(R).
- Corpus score: 500 iterations. Iteration j seeds a Mersenne Twister with ``j * 101`` and,
  for each sentence in order, picks one reference index ``int(rng.random() * k)`` (k = that
  sentence's number of references; this is what Python 2's ``random.randint`` did, so the
  published figures are reproduced). The picked statistics are summed over sentences and
  ``GLEU = BP * exp(1/4 * sum_n log(num_n / den_n))`` with ``BP = exp(min(0, 1 - r/c))``.
  No smoothing: any zero statistic makes the iteration's GLEU 0.
- Reported: mean over iterations, and their population standard deviation (np.std), both
  times 100.

Published check: JFLEG test.src as hypothesis -> 40.5430 (0.405430), dev.src -> 38.2146.

Tokens are taken as given here: :mod:`.scoring` first writes a model's output the way the
references are tokenized (:mod:`.tokens`); this module is the official scorer and nothing else.

Bootstrap: :meth:`CorpusGleu.resampled` scores a whole batch of row resamples at once with all
500 official draws (the same statistic as the point estimate): the per-row statistics picked by
each draw form a matrix P (rows x draws*10), and a batch of resample counts C (resamples x rows)
gives every resample's summed statistics as C @ P.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

ORDER = 4
N_STATS = 2 + 2 * ORDER
SEED_STRIDE = 101
SCALE = 100.0  # points
_CHUNK = 50
_RESAMPLE_CHUNK = 250  # resamples per matrix product: bounds memory to chunk x draws x 10 floats
# Statistic columns: c and den_1..4 depend on the hypothesis only; r and num_1..4 on the reference.
_FIXED = [0, 3, 5, 7, 9]
_VARYING = [1, 2, 4, 6, 8]


class GleuResult(NamedTuple):
    score: float
    std: float


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) + 1 - n))


def _stats_from_tokens(h: list[str], h_ngrams: list[Counter], s_ngrams: list[Counter], r: list[str]) -> tuple[int, ...]:
    out = [len(h), len(r)]
    for n in range(1, ORDER + 1):
        r_ng, s_ng = _ngrams(r, n), s_ngrams[n - 1]
        # One pass over H's n-grams: a type in R counts as a match (clipped by R's count);
        # a type absent from R but present in S is penalised (clipped by S's count). This
        # equals |H & R| - |H & D_n| with the official key-based D_n.
        match = penalty = 0
        for gram, hc in h_ngrams[n - 1].items():
            rc = r_ng.get(gram)
            if rc is not None:
                match += min(hc, rc)
            else:
                penalty += min(hc, s_ng.get(gram, 0))
        out.append(max(0, match - penalty))
        out.append(max(0, len(h) - n + 1))
    return tuple(out)


def _all_ngrams(tokens: list[str]) -> list[Counter]:
    return [_ngrams(tokens, n) for n in range(1, ORDER + 1)]


def sentence_gleu_stats(hypothesis: str, source: str, reference: str) -> tuple[int, ...]:
    """The 10 GLEU statistics ``(c, r, num_1, den_1, ..., num_4, den_4)`` of one
    hypothesis against its source and ONE reference (see the module docstring)."""
    h = hypothesis.split()
    return _stats_from_tokens(h, _all_ngrams(h), _all_ngrams(source.split()), reference.split())


def gleu_from_stats(stats: np.ndarray) -> np.ndarray:
    """GLEU of summed statistics; ``stats`` has shape (..., 10). Any zero statistic -> 0."""
    stats = np.asarray(stats, dtype=np.float64)
    c, r = stats[..., 0], stats[..., 1]
    nums, dens = stats[..., 2::2], stats[..., 3::2]
    ok = np.all(stats != 0, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_prec = np.sum(np.log(nums / dens), axis=-1) / ORDER
        val = np.exp(np.minimum(0.0, 1.0 - r / c) + log_prec)
    return np.where(ok, val, 0.0)


def official_draws(n_refs: Sequence[int], iterations: int) -> np.ndarray:
    """Reference index per (iteration, sentence), shape (iterations, len(n_refs)), drawn as
    the official scorer does: ``Random(j * 101)``, then ``int(rng.random() * k_i)`` in order."""
    draws = np.empty((iterations, len(n_refs)), dtype=np.intp)
    for j in range(iterations):
        rnd = random.Random(j * SEED_STRIDE).random
        draws[j] = [int(rnd() * k) for k in n_refs]
    return draws


class CorpusGleu:
    """Precomputed GLEU statistics of a corpus, so that re-scoring (including on
    bootstrap-resampled rows) only sums precomputed integer vectors.

    ``stats[i, k]`` holds sentence i's statistics against its k-th reference (rows with
    fewer references are padded and never drawn there); ``draws`` holds the official
    reference draws for every iteration.
    """

    def __init__(
        self,
        hypotheses: Sequence[str],
        sources: Sequence[str],
        references: Sequence[Sequence[str]],
        iterations: int = 500,
    ) -> None:
        if not (len(hypotheses) == len(sources) == len(references)):
            raise ValueError("hypotheses, sources and references must have the same length")
        if any(len(refs) == 0 for refs in references):
            raise ValueError("every row needs at least one reference")
        if iterations < 1:
            raise ValueError("iterations must be >= 1")
        n = len(hypotheses)
        self.n_refs = [len(refs) for refs in references]
        self.stats = np.zeros((n, max(self.n_refs, default=1), N_STATS), dtype=np.int64)
        for i, (h, s, refs) in enumerate(zip(hypotheses, sources, references, strict=False)):
            h_tok = h.split()
            h_ngrams, s_ngrams = _all_ngrams(h_tok), _all_ngrams(s.split())
            for k, ref in enumerate(refs):
                self.stats[i, k] = _stats_from_tokens(h_tok, h_ngrams, s_ngrams, ref.split())
        self.iterations = iterations
        self.draws = official_draws(self.n_refs, iterations)
        self._matrices: tuple[np.ndarray, np.ndarray] | None = None

    def _picked(self, start: int, stop: int) -> np.ndarray:
        """Statistics picked by iterations start..stop-1, shape (stop-start, n_rows, 10)."""
        rows = np.arange(self.stats.shape[0])
        return self.stats[rows[None, :], self.draws[start:stop]]

    def score(self, rows: np.ndarray | None = None, iterations: int | None = None) -> GleuResult:
        """Corpus GLEU (points) over ``rows`` (row indices, repeats allowed; default all rows
        in order) using the first ``iterations`` official draws (default all).

        A repeated row reuses that row's draw in each iteration, so with all rows this is
        exactly the official figure and a resample is a reweighting of it.
        """
        it = self.iterations if iterations is None else min(iterations, self.iterations)
        n = self.stats.shape[0]
        weights = (
            np.ones(n, dtype=np.int64) if rows is None else np.bincount(np.asarray(rows, dtype=np.intp), minlength=n)
        )
        # chunked so memory stays O(chunk * n_rows)
        sums = np.concatenate(
            [np.einsum("i,jik->jk", weights, self._picked(a, min(a + _CHUNK, it))) for a in range(0, it, _CHUNK)]
        )
        per_iter = gleu_from_stats(sums) * SCALE
        return GleuResult(float(per_iter.mean()), float(per_iter.std()))

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """Corpus GLEU (points, all official draws) of each resample; ``counts`` has shape
        (resamples, rows): how often each row was drawn (see :func:`.bootstrap.resample_counts`)."""
        counts = np.asarray(counts)
        n = self.stats.shape[0]
        if counts.ndim != 2 or counts.shape[1] != n:
            raise ValueError(f"counts must have shape (resamples, {n})")
        fixed, varying = self._resample_matrices()
        out = np.empty(counts.shape[0], dtype=np.float64)
        for a in range(0, counts.shape[0], _RESAMPLE_CHUNK):
            block = counts[a : a + _RESAMPLE_CHUNK].astype(varying.dtype)
            m = block.shape[0]
            # gleu_from_stats, specialised: c and the denominators are shared by all draws
            c, dens = np.split((block @ fixed).astype(np.float64), [1], axis=1)  # (m, 1), (m, 4)
            picked = (block @ varying).astype(np.float64).reshape(m, self.iterations, len(_VARYING))
            r, nums = picked[:, :, 0], picked[:, :, 1:]
            # a zero numerator gives log 0 = -inf and exp(-inf) = 0, as "any zero statistic -> 0"
            ok = (c > 0) & np.all(dens > 0, axis=1, keepdims=True) & (r > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_dens = np.log(np.where(dens > 0, dens, 1.0)).sum(axis=1, keepdims=True)
                log_prec = (np.log(nums).sum(axis=2) - log_dens) / ORDER
                value = np.exp(np.minimum(0.0, 1.0 - r / np.where(c > 0, c, 1.0)) + log_prec)
            out[a : a + m] = np.where(ok, value, 0.0).mean(axis=1) * SCALE
        return out

    def _resample_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows x 5) statistics that do not depend on the reference (c and the 4
        denominators) and (rows x draws*5) the ones picked by each official draw (r, the 4
        numerators), so that a batch of resamples needs two matrix products."""
        if self._matrices is None:
            n = self.stats.shape[0]
            # A resample's sum is at most n * the largest statistic: below 2**24, float32 adds
            # these integers exactly, at twice float64's speed.
            dtype = np.float32 if n * int(self.stats.max(initial=0)) < 2**24 else np.float64
            picked = self._picked(0, self.iterations)[:, :, _VARYING]  # (draws, rows, 5)
            varying = np.ascontiguousarray(picked.transpose(1, 0, 2).reshape(n, -1), dtype=dtype)
            self._matrices = (np.ascontiguousarray(self.stats[:, 0, _FIXED], dtype=dtype), varying)
        return self._matrices


def corpus_gleu(
    hypotheses: Sequence[str], sources: Sequence[str], references: Sequence[Sequence[str]], iterations: int = 500
) -> GleuResult:
    """Official corpus GLEU in points (see the module docstring): mean and std over
    ``iterations`` seeded reference draws. ``references[i]`` lists row i's references (counts
    may vary). Higher is better."""
    return CorpusGleu(hypotheses, sources, references, iterations).score()
