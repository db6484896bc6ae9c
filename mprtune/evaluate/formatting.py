"""How numbers and texts look in report.md and the model card: one scale per unit, verdicts from the registry.

Units (mprtune.metrics.registry): fractions (rates, QA F1, ROUGE-L) are shown as percentages and
their differences in percentage points; `points` (GLEU, BLEU, iBLEU) are already on 0-100, so
every score in a report reads on the same 0-100 scale. A difference gets ✓ / ✗ only when its paired
interval excludes 0 and the registry says which way is better (`improvement`): a shorter output
is not better in itself, a length closer to the references is.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from mprtune.metrics.registry import improvement

MISSING = "–"
_MD_SPECIAL = "\\`*<>|"  # not "_": intraword underscores (ids, names) are literal in GFM
LABELS = {
    "exact_match": "exact match",
    "empty": "empty outputs",
    "verbose": "verbosity",
    "output_words": "output words",
    "reference_words": "reference words",
    "length_gap": "length gap (words)",
    "length_ratio": "length ratio",
    "gleu": "GLEU",
    "acceptable": "acceptable",
    "over_corrects": "over-corrections",
    "bleu": "BLEU",
    "self_bleu": "self-BLEU",
    "ibleu": "iBLEU",
    "copy_rate": "copy rate",
    "qa_exact_match": "QA exact match",
    "qa_f1": "QA F1",
    "rouge_l": "ROUGE-L",
}
_SCALE = {
    "fraction": (100.0, 1, "%", " pp"),
    "points": (1.0, 2, "", ""),
    "words": (1.0, 1, "", ""),
    "ratio": (1.0, 2, "", ""),
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def _fixed(x: float, d: int) -> str:
    text = f"{x:.{d}f}"
    return text.lstrip("-") if float(text) == 0 else text  # never "-0.0"


def _signed(x: float, d: int) -> str:
    text = _fixed(x, d)
    return text if float(text) == 0 or text.startswith("-") else "+" + text


def _interval(stat: Mapping[str, Any], fmt: Any) -> str:
    low, high = stat.get("ci_low"), stat.get("ci_high")
    return "" if low is None or high is None else f" [{fmt(low)}, {fmt(high)}]"


def format_stat(stat: Mapping[str, Any] | None, unit: str, with_ci: bool = True) -> str:
    """`41.2% [38.0, 44.5]` for fractions, `40.54 [38.50, 42.61]` for points, `18.3` for words."""
    if stat is None:
        return MISSING
    scale, d, suffix, _ = _SCALE[unit]
    fmt = lambda x: _fixed(x * scale, d)
    return fmt(stat["value"]) + suffix + (_interval(stat, fmt) if with_ci else "")


def verdict(
    name: str,
    baseline: Mapping[str, Any] | None,
    tuned: Mapping[str, Any] | None,
    diff: Mapping[str, Any] | None,
    spec: Mapping[str, Any] | None = None,
) -> str:
    """✓ (tuned better), ✗ (worse) or "" (no verdict: within noise, descriptive, or missing)."""
    if baseline is None or tuned is None or diff is None or diff.get("ci_low") is None:
        return ""
    better = improvement(
        name, baseline["value"], tuned["value"], ci_low=diff["ci_low"], ci_high=diff["ci_high"], spec=spec
    )
    return "" if better is None else "✓" if better else "✗"


def format_diff(diff: Mapping[str, Any] | None, unit: str, mark: str = "") -> str:
    """`+12.3 pp [+8.1, +16.0] ✓` for fractions, `+1.26 [+1.02, +1.51]` for points."""
    if diff is None:
        return MISSING
    scale, d, _, delta = _SCALE[unit]
    fmt = lambda x: _signed(x * scale, d)
    text = fmt(diff["value"]) + delta + _interval(diff, fmt)
    return f"{text} {mark}" if mark else text


def within_noise(diff: Mapping[str, Any] | None) -> bool:
    return diff is not None and diff.get("ci_low") is not None and diff["ci_low"] <= 0 <= diff["ci_high"]


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_rate(per_second: float | None) -> str:
    if per_second is None:
        return MISSING
    return f"{per_second:.2f}" if per_second < 10 else f"{per_second:.1f}"


def format_memory(mb: float | None, kind: str, reserved_mb: float | None = None) -> str:
    if mb is None:
        return MISSING
    size = lambda value: f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value:.0f} MiB"
    reserved = f", {size(reserved_mb)} reserved" if reserved_mb is not None else ""
    return f"{size(mb)} ({kind.upper()}{reserved})"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def optional(value: float | None, fmt: str) -> str:
    return MISSING if value is None else format(value, fmt)


def visible(text: str) -> str:
    """Control characters (a stray NUL, terminal escape codes...) shown as `\\u001b`, never passed through."""
    return "".join(
        c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf") else f"\\u{ord(c):04x}" for c in text
    )


def md_cell(text: str, limit: int | None = None) -> str:
    """One Markdown table cell: escape `|` and Markdown specials, control characters, newlines as <br>,
    cap length."""
    text = visible(text.replace("\r\n", "\n").replace("\r", "\n"))
    if limit is not None and len(text) > limit:
        text = text[:limit].rstrip() + "…"
    if not text.strip():
        return "*(empty)*"
    escaped = "".join("\\" + c if c in _MD_SPECIAL else c for c in text)
    return escaped.replace("\n", "<br>")
