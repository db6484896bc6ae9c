"""Grammar-correction row metrics: words changed, over-correction, acceptability."""

from __future__ import annotations

import difflib
from typing import Sequence

from .text import exact_match, is_verbose

OVER_CORRECT_MARGIN = 2
ACCEPTABLE_MAX_EDITS = 1


def changed_words(a: str, b: str) -> int:
    """Words changed going from ``a`` to ``b`` (whitespace tokens, case-sensitive).

    Aligns the token lists with ``difflib.SequenceMatcher(autojunk=False)`` and sums over
    its opcodes: ``delete`` counts the deleted a-tokens, ``insert`` the inserted b-tokens,
    ``replace`` ``max(len(a-span), len(b-span))`` (each replaced a-token, plus any surplus
    b-tokens, which are insertions), ``equal`` 0. Example: "a b c" -> "a x c d" = 2.
    """
    ta, tb = a.split(), b.split()
    total = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if tag != "equal":
            total += max(i2 - i1, j2 - j1)
    return total


def over_corrects(output: str, source: str, references: Sequence[str],
                  margin: int = OVER_CORRECT_MARGIN) -> bool:
    """True iff ``changed_words(source, output) > max_r changed_words(source, r) + margin``:
    the output edits the source more than the most-edited reference does, beyond
    ``margin`` words. higher_is_better (as a rate): False."""
    if not references:
        raise ValueError("need at least one reference")
    most = max(changed_words(source, r) for r in references)
    return changed_words(source, output) > most + margin


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between the whitespace-token lists of ``a`` and ``b``
    (insert, delete, substitute a token: cost 1 each)."""
    ta, tb = a.split(), b.split()
    prev = list(range(len(tb) + 1))
    for i, x in enumerate(ta, 1):
        cur = [i]
        for j, y in enumerate(tb, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def acceptable(output: str, source: str, references: Sequence[str]) -> bool:
    """True iff the output exactly matches a reference (whitespace-normalised), OR it is
    within ``ACCEPTABLE_MAX_EDITS`` (= 1) token of some reference by
    :func:`word_edit_distance` AND it is not verbose (:func:`~.text.is_verbose`).

    Rationale: JFLEG-style references disagree on single words (an article, a comma), so
    one token away from a human correction is still a correction a human would accept;
    wrapping it in chat text is not. higher_is_better (as a rate): True.
    """
    if exact_match(output, references):
        return True
    near = any(word_edit_distance(output, r) <= ACCEPTABLE_MAX_EDITS for r in references)
    return near and not is_verbose(output, source, references)
