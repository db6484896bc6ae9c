"""Grammar-correction row metrics: words changed, over-correction, acceptability.

Every function takes whitespace-tokenized text: :mod:`.scoring` first writes a model's output the
way the row's references are tokenized (:mod:`.tokens`), and over-correction is judged on the
answer extracted from a chat wrapper (:func:`.text.extract_answer`), not on the wrapper.

Over-correction measures the correction itself. Align the source with the answer and with each
reference (``difflib.SequenceMatcher``, tokens). An edit of the answer is *justified* when some
reference edits the same place: a source token changed (replaced or deleted) by the answer is
justified if a reference changes that token too; tokens the answer inserts between two source
tokens are justified if a reference inserts there or changes a token next to it. The answer
over-corrects when it makes more than ``OVER_CORRECT_MARGIN`` (1) unjustified token edits: it
rewrites what every human annotator left alone. JFLEG test line 1, "New and new technology has
been introduced to the society .": "New technologies have been introduced to society ." changes
"technology" and "has", which no reference touches (2 > 1: over-correction); "Newer and newer
technology has been introduced to society ." only makes edits some reference makes (0).

Calibration on JFLEG test (measured): each reference file scored against all four references:
0 % (a reference justifies itself); the source copied: 0 %; one reference held out and judged
against the other three: 14.6 % of human corrections make more than one edit the other three
annotators did not (that is the rule's noise floor for a fifth human; the old "most-edited
reference + 2 words" rule flagged 5.5 % of them but missed the plural rewrite above). Judging
against the single closest reference instead of any reference flags 23.6 % of held-out humans.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from .text import exact_match, is_verbose

OVER_CORRECT_MARGIN = 1
ACCEPTABLE_MAX_EDITS = 1


def _opcodes(a: list[str], b: list[str]):
    return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def changed_words(a: str, b: str) -> int:
    """Words changed going from ``a`` to ``b`` (whitespace tokens, case-sensitive).

    Aligns the token lists with ``difflib.SequenceMatcher(autojunk=False)`` and sums over
    its opcodes: ``delete`` counts the deleted a-tokens, ``insert`` the inserted b-tokens,
    ``replace`` ``max(len(a-span), len(b-span))`` (each replaced a-token, plus any surplus
    b-tokens, which are insertions), ``equal`` 0. Example: "a b c" -> "a x c d" = 2.
    """
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in _opcodes(a.split(), b.split()) if tag != "equal")


class SourceEdits(NamedTuple):
    """Where a text edits its source: ``changed[i]`` for source token i (replaced or deleted),
    ``inserted[g]`` tokens added at gap g (before source token g; g = len(source) is the end)."""

    changed: list[bool]
    inserted: list[int]


def source_edits(source: list[str], text: list[str]) -> SourceEdits:
    changed, inserted = [False] * len(source), [0] * (len(source) + 1)
    for tag, i1, i2, j1, j2 in _opcodes(source, text):
        if tag == "equal":
            continue
        for i in range(i1, i2):
            changed[i] = True
        if j2 - j1 > i2 - i1:  # an insert, or a replace that writes more tokens than it removes
            inserted[i2] += (j2 - j1) - (i2 - i1)
    return SourceEdits(changed, inserted)


def unjustified_edits(answer: str, source: str, references: Sequence[str]) -> int:
    """Token edits of ``answer`` (to ``source``) that no reference makes at the same place
    (see the module docstring)."""
    if not references:
        raise ValueError("need at least one reference")
    src = source.split()
    mine = source_edits(src, answer.split())
    changed, inserted = _reference_edits(source, tuple(references))
    count = sum(1 for i in range(len(src)) if mine.changed[i] and not changed[i])
    for gap, n in enumerate(mine.inserted):
        if n and not (inserted[gap] or (gap > 0 and changed[gap - 1]) or (gap < len(src) and changed[gap])):
            count += n
    return count


@lru_cache(maxsize=4096)
def _reference_edits(source: str, references: tuple[str, ...]) -> tuple[list[bool], list[bool]]:
    """Per source token: does any reference change it; per gap: does any reference insert
    there. Cached: both systems of a comparison are judged against the same rows."""
    src = source.split()
    theirs = [source_edits(src, r.split()) for r in references]
    return (
        [any(t.changed[i] for t in theirs) for i in range(len(src))],
        [any(t.inserted[g] for t in theirs) for g in range(len(src) + 1)],
    )


def over_corrects(answer: str, source: str, references: Sequence[str], margin: int = OVER_CORRECT_MARGIN) -> bool:
    """True iff :func:`unjustified_edits` > ``margin``: the answer rewrites what every
    reference left alone. Lower is better (as a rate)."""
    return unjustified_edits(answer, source, references) > margin


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


def acceptable(output: str, source: str, references: Sequence[str], verbose: bool | None = None) -> bool:
    """True iff the output is non-empty and exactly matches a reference (whitespace-normalised),
    or is within ``ACCEPTABLE_MAX_EDITS`` (= 1) token of some reference by
    :func:`word_edit_distance` AND not verbose (``verbose`` defaults to
    :func:`~.text.is_verbose`).

    Rationale: JFLEG-style references disagree on single words (an article, a comma), so
    one token away from a human correction is still a correction a human would accept;
    wrapping it in chat text is not. Higher is better (as a rate).
    """
    if not output.strip():
        return False
    if exact_match(output, references):
        return True
    near = any(word_edit_distance(output, r) <= ACCEPTABLE_MAX_EDITS for r in references)
    if not near:
        return False
    return not (is_verbose(output, source, references) if verbose is None else verbose)
