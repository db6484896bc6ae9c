"""Which eval rows the report shows side by side, and the per-row tags it prints for them.

Rows are chosen by rule, never by hand: round-robin over categories of change (tuned fixes a row,
breaks a row, stops being verbose, ...), earliest rows first, so the choice is deterministic and
free of cherry-picking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# per_row key -> tag, in display order: the built-in kinds' flags, for rows that carry no tags of their own
_TAGS = (
    ("empty", "EMPTY"),
    ("exact", "EXACT"),
    ("acceptable", "ACCEPTABLE"),
    ("qa_exact_match", "QA-EXACT"),
    ("verbose", "VERBOSE"),
    ("over_corrects", "OVER-CORRECTS"),
    ("copy", "COPY"),
)


def tags_for(row_tags: Mapping[str, Any]) -> list[str]:
    """Upper-case tags of one built-in kind's per-row dict: its true flags (EMPTY first)."""
    return [tag for key, tag in _TAGS if row_tags.get(key) is True]


def _tags(row: Mapping[str, Any], system: str) -> list[str]:
    given = row.get(f"{system}_tags")
    return list(given) if given is not None else tags_for(row[f"{system}_row"])


def _good(row: Mapping[str, Any], system: str) -> bool:
    """The task kind's verdict when the row carries one, else the built-in kinds' (exact, acceptable, QA exact)."""
    given = row.get(f"{system}_good")
    if given is not None:
        return bool(given)
    tags = row[f"{system}_row"]
    return bool(tags.get("exact") or tags.get("acceptable") or tags.get("qa_exact_match"))


def _category(row: Mapping[str, Any]) -> int:
    """Lower is more informative: fixes, regressions, verbosity fixed, side effects, any change."""
    base, tuned = row["baseline_row"], row["tuned_row"]
    if _good(row, "tuned") and not _good(row, "baseline"):
        return 0
    if _good(row, "baseline") and not _good(row, "tuned"):
        return 1
    if base.get("verbose") and not tuned.get("verbose"):
        return 2
    if tuned.get("over_corrects") or tuned.get("copy") or tuned.get("verbose"):
        return 3
    return 4 if row["baseline_output"] != row["tuned_output"] else _IDENTICAL


_IDENTICAL = 5


def select_samples(per_variant_rows: Mapping[str, Sequence[Mapping[str, Any]]], k: int = 5) -> list[dict[str, Any]]:
    """Pick up to ``k`` informative rows per variant, ready for ``results["samples"]``.

    Each input row needs ``id``, ``source``, ``reference`` (a string or the list of
    references; the first is kept), ``baseline_output``, ``tuned_output``, the two per-row
    tag dicts ``baseline_row`` / ``tuned_row``, their shown tags ``baseline_tags`` /
    ``tuned_tags`` and whether each output counts as right (``baseline_good`` / ``tuned_good``,
    the task kind's verdict); its position is its ``row``. Rows are
    taken round-robin over categories (tuned fixes a row, tuned breaks a row, verbosity
    removed, tuned over-corrects/copies/is verbose, outputs differ) so one kind of row cannot
    crowd out the others; identical outputs only fill what is left. Within a category the earliest rows win, which keeps
    the choice deterministic and free of cherry-picking. Output is in row order.
    """
    samples: list[dict[str, Any]] = []
    for variant, rows in per_variant_rows.items():
        buckets: dict[int, list[int]] = {}
        for index, row in enumerate(rows):
            buckets.setdefault(_category(row), []).append(index)
        queues = [buckets[c] for c in sorted(buckets) if c != _IDENTICAL]
        chosen: list[int] = []
        while len(chosen) < k and any(queues):
            for queue in queues:
                if queue and len(chosen) < k:
                    chosen.append(queue.pop(0))
        chosen += buckets.get(_IDENTICAL, [])[: k - len(chosen)]  # filler only
        for index in sorted(chosen):
            row = rows[index]
            ref = row["reference"]
            samples.append(
                {
                    "variant": variant,
                    "row": index,
                    "id": str(row["id"]),
                    "source": row["source"],
                    "reference": ref if isinstance(ref, str) else (ref[0] if ref else ""),
                    "references": [ref] if isinstance(ref, str) else list(ref),
                    "baseline_output": row["baseline_output"],
                    "tuned_output": row["tuned_output"],
                    "baseline_tags": _tags(row, "baseline"),
                    "tuned_tags": _tags(row, "tuned"),
                }
            )
    return samples
