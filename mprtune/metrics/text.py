"""Surface text metrics: whitespace normalisation, exact match, word count, verbosity.

The verbosity detector flags chat-style answers that wrap the wanted text in extra
material. It returns reason tags (an empty list means "not verbose"):

- ``preamble``: the output starts (case-insensitively, at a word boundary) with a lead-in
  such as "Here is", "Here's", "Sure", "Certainly", "The corrected sentence is",
  "Corrected:", "Paraphrase:", "Answer:", "Output:" -- unless the source or a reference
  starts with that same lead-in (then it is legitimate content).
- ``explanation``: the output contains, anywhere, a commentary phrase such as "I changed",
  "I corrected", "Explanation:", "Note:", "because" -- unless the source or a reference
  contains the same phrase (e.g. a sentence that legitimately says "because").
- ``quotes``: the whole output is wrapped in a pair of quotes ("...", '...', “...”,
  ‘...’, «...») while no reference is.
- ``multiline``: the output has more than one non-empty line while every reference has
  at most one.
- ``too_long``: the output has more than 1.5x the words of the longest reference.

Rules that compare against references are skipped when there are no references.
"""

from __future__ import annotations

import re
from typing import Sequence

_WS = re.compile(r"\s+")

# Lead-ins a chat model puts before the answer. Matched at the start, case-insensitive.
_PREAMBLES: tuple[str, ...] = (
    r"here\s+is", r"here[’']s", r"here\s+are", r"sure", r"certainly", r"of\s+course",
    r"the\s+(?:corrected|correct|revised|rewritten|paraphrased)\s+(?:sentence|version|text)\s+is",
    r"the\s+paraphrase\s+is", r"the\s+answer\s+is",
    r"(?:corrected|revised|rewritten)(?:\s+(?:sentence|version|text))?\s*:",
    r"correction\s*:", r"paraphrased?(?:\s+(?:sentence|version|text))?\s*:",
    r"answer\s*:", r"output\s*:",
)
_PREAMBLE_RES = [re.compile(r"^" + p + r"(?!\w)", re.IGNORECASE) for p in _PREAMBLES]

# Commentary phrases. Matched anywhere, case-insensitive, on word boundaries.
_EXPLANATIONS: tuple[str, ...] = (
    r"i(?:\s+have|['’]ve)?\s+(?:changed|corrected|replaced|added|removed|fixed|rephrased)",
    r"explanation\s*:", r"note\s*:", r"changes\s+made", r"the\s+original\s+sentence",
    r"because",
)
_EXPLANATION_RES = [re.compile(r"(?<!\w)" + p + r"(?!\w)", re.IGNORECASE) for p in _EXPLANATIONS]

_QUOTE_PAIRS: tuple[tuple[str, str], ...] = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"))

TOO_LONG_FACTOR = 1.5


def normalize_ws(text: str) -> str:
    """Strip ``text`` and collapse every run of whitespace to one space."""
    return _WS.sub(" ", text).strip()


def word_count(text: str) -> int:
    """Number of whitespace-separated words: ``len(text.split())``."""
    return len(text.split())


def exact_match(output: str, references: Sequence[str]) -> bool:
    """True iff ``normalize_ws(output)`` equals ``normalize_ws(r)`` for ANY reference r.

    Case-sensitive; no normalisation other than whitespace. higher_is_better: True.
    """
    out = normalize_ws(output)
    return any(out == normalize_ws(r) for r in references)


def _nonempty_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def _is_quoted(text: str) -> bool:
    t = text.strip()
    return len(t) >= 2 and any(t.startswith(a) and t.endswith(b) for a, b in _QUOTE_PAIRS)


def verbosity_reasons(output: str, source: str, references: Sequence[str]) -> list[str]:
    """Reason tags why ``output`` is verbose, in the order preamble, explanation, quotes,
    multiline, too_long (see the module docstring for each rule); ``[]`` = not verbose.

    higher_is_better (for the derived ``verbose`` rate): False.
    """
    reasons: list[str] = []
    out = output.strip()
    context = [source.strip(), *(r.strip() for r in references)]

    for rx in _PREAMBLE_RES:
        if rx.match(out) and not any(rx.match(c) for c in context):
            reasons.append("preamble")
            break
    for rx in _EXPLANATION_RES:
        if rx.search(out) and not any(rx.search(c) for c in context):
            reasons.append("explanation")
            break
    if references:
        if _is_quoted(out) and not any(_is_quoted(r) for r in references):
            reasons.append("quotes")
        if _nonempty_lines(out) > 1 and all(_nonempty_lines(r) <= 1 for r in references):
            reasons.append("multiline")
        if word_count(out) > TOO_LONG_FACTOR * max(word_count(r) for r in references):
            reasons.append("too_long")
    return reasons


def is_verbose(output: str, source: str, references: Sequence[str]) -> bool:
    """True iff :func:`verbosity_reasons` returns at least one reason."""
    return bool(verbosity_reasons(output, source, references))
