"""What a report leads with for a variant: its task kind's presentation, as results.json records it.

compare writes `presentation` into every variant entry; results written before schema 4 (or by
hand) lack it, and then the built-in kind named by `task_kind` supplies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mprtune.evaluate.formatting import md_cell
from mprtune.tasks import KindError, TaskKind, resolve_kind


def presentation_entry(kind: TaskKind) -> dict[str, Any]:
    """What the report leads with for a task of this kind: headline, table, plot, answer extraction."""
    shown = kind.presentation()
    return {
        "primary": shown.primary,
        "summary": list(shown.summary),
        "table": list(shown.table),
        "panel": list(shown.panel),
        "panel_group": shown.panel_group,
        "answer": kind.describe_answer(),
    }


def presentation_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A results variant entry's presentation: its own, else its task kind's (without options)."""
    if "presentation" in entry:
        return dict(entry["presentation"])
    try:
        return presentation_entry(resolve_kind(entry["task_kind"])(task=entry.get("task", "")))
    except (KindError, NotImplementedError):  # a plugin that is not installed here: lead with what was measured
        names = sorted(entry["tuned"]["metrics"])
        return {
            "primary": names[0] if names else "",
            "summary": names[:6],
            "table": names,
            "panel": names[:1],
            "panel_group": entry["task_kind"],
            "answer": "",
        }


def confusion_tables(v: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One table per system that has a confusion matrix (a custom task with labels)."""
    tables = []
    for system in ("baseline", "tuned"):
        found = v[system].get("details", {}).get("confusion")
        if not found:
            continue
        rows = [
            [f"**{md_cell(str(label))}**", *(str(count) for count in counts)]
            for label, counts in zip(found["labels"], found["matrix"], strict=False)
        ]
        header = ["Reference \\ answer", *(md_cell(str(c)) for c in found["columns"])]
        tables.append({"system": system, "header": header, "rows": rows, "align": "l" + "r" * len(found["columns"])})
    return tables
