"""Surface text metrics: whitespace normalisation, exact match, word count, verbosity, and
extraction of the answer from a chat wrapper.

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
- ``too_long``: the output has more words than ``max(1.5 x, 3 +)`` the longest reference's
  words. The absolute slack keeps short answers fair: "The Beatles" for "Beatles", "366 days"
  for "366" are answers, not chatter. Callers may pass word counts (grammar and paraphrase pass
  the token counts of the tokenization convention of :mod:`.tokens`).

Rules that compare against references are skipped when there are no references. An empty
output has no reasons; :mod:`.scoring` leaves empty outputs out of the verbose rate (they have
their own ``empty`` rate).

:func:`extract_answer` undoes the wrapper: it drops a leading preamble, trailing explanation
lines or sentences and wrapping quotes, and returns the one answer left, or None when no single
clean answer can be found (several candidate lines, an explanation inside the answer sentence,
nothing after the preamble, or what is left is still verbose, e.g. too long to be an answer).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WS = re.compile(r"\s+")

# Lead-ins a chat model puts before the answer. Matched at the start, case-insensitive.
_PREAMBLES: tuple[str, ...] = (
    r"here\s+is",
    r"here[’']s",
    r"here\s+are",
    r"sure",
    r"certainly",
    r"of\s+course",
    r"the\s+(?:corrected|correct|revised|rewritten|paraphrased)\s+(?:sentence|version|text)\s+is",
    r"the\s+paraphrase\s+is",
    r"the\s+answer\s+is",
    r"(?:corrected|revised|rewritten)(?:\s+(?:sentence|version|text))?\s*:",
    r"correction\s*:",
    r"paraphrased?(?:\s+(?:sentence|version|text))?\s*:",
    r"answer\s*:",
    r"output\s*:",
)
_PREAMBLE_RES = [re.compile(r"^" + p + r"(?!\w)", re.IGNORECASE) for p in _PREAMBLES]

# Commentary phrases. Matched anywhere, case-insensitive, on word boundaries.
_EXPLANATIONS: tuple[str, ...] = (
    r"i(?:\s+have|['’]ve)?\s+(?:changed|corrected|replaced|added|removed|fixed|rephrased)",
    r"explanation\s*:",
    r"note\s*:",
    r"changes\s+made",
    r"the\s+original\s+sentence",
    r"because",
)
_EXPLANATION_RES = [re.compile(r"(?<!\w)" + p + r"(?!\w)", re.IGNORECASE) for p in _EXPLANATIONS]

_QUOTE_PAIRS: tuple[tuple[str, str], ...] = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"))

TOO_LONG_FACTOR = 1.5
TOO_LONG_SLACK = 3  # words
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+")
_AFTER_LEAD_IN = re.compile(r"^[\s!,.:;\-–—]*")


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


def too_long_limit(reference_words: Sequence[int]) -> float:
    """Most words an output may have before it is ``too_long``: ``max(1.5 x, 3 + longest)``."""
    longest = max(reference_words)
    return max(TOO_LONG_FACTOR * longest, longest + TOO_LONG_SLACK)


def verbosity_reasons(
    output: str,
    source: str,
    references: Sequence[str],
    *,
    output_words: int | None = None,
    reference_words: Sequence[int] | None = None,
) -> list[str]:
    """Reason tags why ``output`` is verbose, in the order preamble, explanation, quotes,
    multiline, too_long (see the module docstring for each rule); ``[]`` = not verbose.
    ``output_words`` / ``reference_words`` (one count per reference) default to whitespace
    word counts. Lower is better (for the derived ``verbose`` rate).
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
        words = word_count(out) if output_words is None else output_words
        limits = [word_count(r) for r in references] if reference_words is None else reference_words
        if words > too_long_limit(limits):
            reasons.append("too_long")
    return reasons


def is_verbose(output: str, source: str, references: Sequence[str]) -> bool:
    """True iff :func:`verbosity_reasons` returns at least one reason."""
    return bool(verbosity_reasons(output, source, references))


def _legit(rx: re.Pattern, context: Sequence[str], search: bool) -> bool:
    """A phrase the source or a reference itself contains is content, not a wrapper."""
    return any((rx.search(c) if search else rx.match(c)) for c in context)


def _strip_preamble(line: str, context: Sequence[str]) -> str:
    """``line`` without its chat lead-ins: up to the first colon when the lead-in is followed
    by one ("Here is the corrected sentence: ..."), else the lead-in word and its punctuation
    ("Sure! ...", "Sure, ..."). Repeated ("Sure! Here is ...:")."""
    for _ in range(3):
        rx = next((rx for rx in _PREAMBLE_RES if rx.match(line) and not _legit(rx, context, False)), None)
        if rx is None:
            break
        matched = rx.match(line)
        assert matched is not None  # rx was picked because it matches
        rest = line[matched.end() :]
        colon = rest.find(":")
        if colon >= 0 and not _SENTENCE_END.search(_AFTER_LEAD_IN.sub("", rest[:colon], count=1)):
            line = rest[colon + 1 :].strip()  # the colon ends the lead-in sentence
        else:
            line = _AFTER_LEAD_IN.sub("", rest, count=1)
    return line.strip()


def _strip_quotes(text: str, references: Sequence[str]) -> str:
    t = text.strip()
    if _is_quoted(t) and not any(_is_quoted(r) for r in references):
        return t[1:-1].strip()
    return t


def extract_answer(output: str, source: str, references: Sequence[str]) -> str | None:
    """The answer inside a chat wrapper, or None when no single clean answer is there (see the
    module docstring). A clean output is its own answer (stripped)."""
    context = [source.strip(), *(r.strip() for r in references)]
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if lines:
        first = _strip_preamble(lines[0], context)
        lines = ([first] if first else []) + lines[1:]
    for i, line in enumerate(lines):
        rx = next((rx for rx in _EXPLANATION_RES if rx.search(line) and not _legit(rx, context, True)), None)
        if rx is None:
            continue
        if i > 0:
            lines = lines[:i]  # explanation lines follow the answer
        else:  # the explanation starts inside the first line: keep the sentences before it
            found = rx.search(line)
            assert found is not None  # rx was picked because it is found in this line
            start = found.start()
            ends = [m.end() for m in _SENTENCE_END.finditer(line) if m.end() <= start]
            lines = [line[: ends[-1]].strip()] if ends else []
        break
    if len(lines) != 1:
        return None
    answer = _strip_quotes(lines[0], references)
    if not answer or verbosity_reasons(answer, source, references):
        return None
    return answer
