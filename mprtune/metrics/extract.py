"""The answer pipeline of a custom task: a short declared list of steps that takes the answer out of an output.

The same pipeline is applied to the base and the tuned model's outputs, and :func:`describe`
writes it as one line for the report. Steps (a name, or a one-key mapping for steps with an
argument), in the order given:

- ``strip``: strip surrounding whitespace;
- ``first_line`` / ``last_line``: keep the first / last non-empty line;
- ``drop_preamble``: drop a chat lead-in ("Sure!", "Here is the answer:", "Answer:", "The answer is");
- ``unquote``: drop one pair of quotes wrapping the whole answer;
- ``code_fence``: keep the body of the first fenced block (```json ... ```), if there is one;
- ``lower``: lowercase;
- ``{regex: PATTERN}``: the first match of PATTERN (Python `re`): its group ``(?P<answer>...)``
  if it has one, else its first group if it has groups, else the whole match; no match: no answer;
- ``label``: normalise as a label: casefold, collapse whitespace, drop punctuation and quotes at
  both ends ("Positive." -> "positive"), then the declared label it names (labels compare the
  same way); a text that names no label stays as it is and is out of the label set;
- ``json``: parse as strict JSON (no NaN, no trailing text); the answer compared is then the value,
  written canonically (sorted keys, compact), so key order and layout do not matter. Last step.

A step that finds nothing (an empty text, no regex match, invalid JSON) ends the pipeline with no
answer and the reason (``Extracted.error``). Pure Python: no numpy here (the matrix checks steps).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mprtune.errors import show

from .text import _strip_preamble

STEPS: dict[str, str] = {
    "strip": "strip whitespace",
    "first_line": "first non-empty line",
    "last_line": "last non-empty line",
    "drop_preamble": "drop a chat lead-in",
    "unquote": "drop wrapping quotes",
    "code_fence": "body of a ``` block",
    "lower": "lowercase",
    "regex": "first match of /{arg}/",
    "label": "normalise as a label",
    "find_label": "the one label the output names (none or several: no answer)",
    "json": "parse as JSON (sorted keys)",
}
WITH_ARGUMENT = ("regex",)
_EXTRA_LEAD_INS = re.compile(
    r"^(?:the\s+(?:final\s+)?(?:answer|label|sentiment|category|class|result)\s+(?:is|would\s+be)\s*:?|final\s+answer\s*:)\s*",
    re.IGNORECASE,
)
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n?(.*?)```", re.DOTALL)
_EDGE = string.punctuation + "“”‘’«»¿¡。、 \t\n"
_QUOTES = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"), ("`", "`"))


@dataclass(frozen=True)
class Step:
    name: str
    arg: str | None = None
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Extracted:
    """What the pipeline made of one output.

    ``text`` is the answer as compared (canonical JSON after a ``json`` step), None when nothing
    was extracted (then ``error`` says why); ``value`` the parsed JSON value (``parsed`` True).
    ``json_text`` is the text the ``json`` step parsed (to judge verbosity on the rest).
    """

    text: str | None
    error: str | None = None
    value: Any = None
    parsed: bool = False
    json_text: str | None = None


def parse_steps(raw: Any, key: str = "answer") -> tuple[list[Step], list[tuple[str, str]]]:
    """The steps of `raw` (a list), and the problems as (key path, message)."""
    if not isinstance(raw, list) or not raw:
        return [], [(key, f"expected a non-empty list of steps ({', '.join(STEPS)}), got {show(raw)}")]
    steps: list[Step] = []
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]"
        if isinstance(item, Mapping) and len(item) == 1:
            ((name, arg),) = item.items()
        elif isinstance(item, str):
            name, arg = item, None
        else:
            problems.append(
                (where, f"expected a step name or a one-key mapping such as {{regex: ...}}, got {show(item)}")
            )
            continue
        if name not in STEPS:
            close = _close(str(name), list(STEPS))
            problems.append((where, f"unknown step {show(name)}; expected one of {', '.join(STEPS)}{close}"))
            continue
        if (name in WITH_ARGUMENT) != (arg is not None):
            wanted = f"{{{name}: PATTERN}}" if name in WITH_ARGUMENT else name
            problems.append((where, f"write this step as {wanted}"))
            continue
        if name == "regex":
            if not isinstance(arg, str):
                problems.append((f"{where}.regex", f"expected a pattern string, got {show(arg)}"))
                continue
            try:
                pattern = re.compile(arg)
            except re.error as exc:
                problems.append((f"{where}.regex", f"the pattern does not compile: {exc}"))
                continue
            steps.append(Step(name, arg, pattern))
        else:
            steps.append(Step(name))
    if any(s.name == "json" for s in steps[:-1]):
        problems.append((key, "`json` must be the last step"))
    return steps, problems


def _close(name: str, names: Sequence[str]) -> str:
    import difflib

    found = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {found[0]!r}?" if found else ""


def normalize_label(text: str) -> str:
    """Casefold, collapse whitespace, drop punctuation and quotes at both ends."""
    return " ".join(text.casefold().split()).strip(_EDGE)


def _unquote(text: str) -> str:
    t = text.strip()
    for a, b in _QUOTES:
        if len(t) >= 2 and t.startswith(a) and t.endswith(b):
            return t[len(a) : -len(b)].strip()
    return t


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _drop_preamble(text: str) -> str:
    lines = text.strip().splitlines()
    if not lines:
        return ""
    first = _EXTRA_LEAD_INS.sub("", _strip_preamble(lines[0].strip(), []), count=1).strip()
    if not first and len(lines) > 1:  # "Here is the JSON:" on a line of its own
        return "\n".join(lines[1:]).strip()
    return "\n".join([first, *lines[1:]]).strip()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None) for strict JSON, else (None, the reason)."""
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except (ValueError, RecursionError) as exc:
        return None, f"invalid JSON: {str(exc)[:120]}"


def canonical_json(value: Any) -> str:
    """The value written one way: sorted keys, `, ` and `: ` separators, no ASCII escapes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class Pipeline:
    """The declared steps; `labels` (declared spelling) for the `label` step."""

    def __init__(self, steps: Sequence[Step], labels: Sequence[str] = ()) -> None:
        self.steps = tuple(steps)
        self.labels = {normalize_label(label): label for label in labels}

    @property
    def parses_json(self) -> bool:
        return any(s.name == "json" for s in self.steps)

    def run(self, output: str) -> Extracted:
        text = output
        if not text.strip():
            return Extracted(None, "empty output")
        for step in self.steps:
            if step.name == "json":
                value, error = parse_json(text)
                if error is not None:
                    return Extracted(None, error)
                return Extracted(canonical_json(value), None, value, True, text)
            text = self._apply(step, text)
            if not text.strip():
                why = f"no match for /{step.arg}/" if step.name == "regex" else f"nothing left after {step.name}"
                if step.name == "find_label":
                    why = "names no label, or several"
                return Extracted(None, why)
        return Extracted(text)

    def label_of(self, text: str) -> str | None:
        """The declared label `text` names (label normalisation), None when it names none."""
        return self.labels.get(normalize_label(text))

    def _apply(self, step: Step, text: str) -> str:  # noqa: C901 - one branch per step
        name = step.name
        if name == "strip":
            return text.strip()
        if name in ("first_line", "last_line"):
            lines = _lines(text)
            return (lines[0] if name == "first_line" else lines[-1]) if lines else ""
        if name == "drop_preamble":
            return _drop_preamble(text)
        if name == "unquote":
            return _unquote(text)
        if name == "code_fence":
            found = _FENCE.search(text)
            return found.group(1).strip() if found else text
        if name == "lower":
            return text.lower()
        if name == "regex":
            assert step.pattern is not None
            match = step.pattern.search(text)
            if match is None:
                return ""
            if "answer" in step.pattern.groupindex:
                return match.group("answer") or ""
            return (match.group(1) or "") if step.pattern.groups else match.group(0)
        if name == "label":
            normal = normalize_label(text)
            return self.labels.get(normal, normal)
        if name == "find_label":
            # a chat answer ("The review is negative.") names its label; one that names two is no answer
            named = {label for key, label in self.labels.items() if self._names(key, text)}
            return named.pop() if len(named) == 1 else ""
        raise AssertionError(name)

    @staticmethod
    def _names(label: str, text: str) -> bool:
        return re.search(r"(?<!\w)" + re.escape(label) + r"(?!\w)", text.casefold()) is not None


def describe(steps: Sequence[Step]) -> str:
    """The pipeline as one human line: `strip -> first line -> first match of /(yes|no)/ -> ...`."""
    return " -> ".join(STEPS[s.name].format(arg=s.arg) for s in steps) or "the whole output"
