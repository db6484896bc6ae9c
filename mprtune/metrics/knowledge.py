"""Knowledge metrics: SQuAD/KILT answer normalisation, exact match, token F1, ROUGE-L.

All three compare after :func:`normalize_answer` and take the MAX over gold answers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 / KILT normalisation: lowercase, drop ASCII punctuation, replace the
    articles a/an/the by spaces, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def qa_exact_match(prediction: str, gold_answers: Sequence[str]) -> bool:
    """True iff the normalised prediction equals some normalised gold answer.
    higher_is_better: True."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(g) for g in gold_answers)


def _f1(pred: list[str], gold: list[str]) -> float:
    # SQuAD definition: bag-of-tokens overlap; 0 when nothing overlaps (incl. empty sides).
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """SQuAD token F1: with p/g the normalised tokens and m = |Counter(p) & Counter(g)|,
    F1 = 2PR/(P+R), P = m/|p|, R = m/|g| (0 if m = 0); max over gold answers, 0 if none.
    higher_is_better: True."""
    pred = normalize_answer(prediction).split()
    return max((_f1(pred, normalize_answer(g).split()) for g in gold_answers), default=0.0)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences (O(|a||b|) DP)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure (beta = 1) on normalised tokens: with L = LCS length,
    P = L/|pred|, R = L/|ref|, F = 2PR/(P+R) (0 if L = 0); max over references.
    higher_is_better: True."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for ref in references:
        ref_tok = normalize_answer(ref).split()
        lcs = lcs_length(pred, ref_tok)
        if lcs:
            p, r = lcs / len(pred), lcs / len(ref_tok)
            best = max(best, 2 * p * r / (p + r))
    return best
