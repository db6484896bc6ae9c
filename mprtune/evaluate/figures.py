"""metrics.png of a report: per panel group (a task kind), its main metric and exact match, baseline vs tuned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mprtune.evaluate.formatting import label
from mprtune.evaluate.presentation import presentation_of
from mprtune.plots import Bar, Panel
from mprtune.tasks import TASK_KINDS


def panel_metric(variants: Sequence[Mapping[str, Any]]) -> str:
    """The metric a group's panel shows: of its kind's candidates (presentation.panel), the one that moved most."""
    panel = presentation_of(variants[0])["panel"] or [presentation_of(variants[0])["primary"]]
    candidates = [n for n in panel if any(n in v["diff"] for v in variants)]
    if not candidates:
        return panel[0]
    return max(candidates, key=lambda n: max(abs(v["diff"][n]["value"]) for v in variants if n in v["diff"]))


def _bars(variants: Sequence[Mapping[str, Any]], system: str, name: str, scale: float) -> list[Bar]:
    """One system's bars of metric `name`, on the display scale (fractions x 100)."""
    stats = [v[system]["metrics"][name] for v in variants]
    return [
        Bar(
            s["value"] * scale,
            None if s["ci_low"] is None else s["ci_low"] * scale,
            None if s["ci_high"] is None else s["ci_high"] * scale,
        )
        for s in stats
    ]


def metric_panels(results: Mapping[str, Any]) -> list[Panel]:
    """Per task kind: its main metric and exact match, baseline vs tuned per variant (fractions in %)."""
    specs = results["metrics"]
    panels = []
    groups = list(dict.fromkeys(presentation_of(v)["panel_group"] for v in results["variants"]))
    groups.sort(key=lambda g: TASK_KINDS.index(g) if g in TASK_KINDS else len(TASK_KINDS))  # stable: others keep order
    for kind in groups:
        variants = [v for v in results["variants"] if presentation_of(v)["panel_group"] == kind]
        for name in dict.fromkeys((panel_metric(variants), "exact_match")):
            shown = [v for v in variants if name in v["baseline"]["metrics"] and name in v["tuned"]["metrics"]]
            if not shown:
                continue
            scale = 100.0 if specs.get(name, {}).get("unit") == "fraction" else 1.0

            panels.append(
                Panel(
                    f"{kind}: {label(name)}" + (" (%)" if scale == 100.0 else ""),
                    [v["variant"] for v in shown],
                    _bars(shown, "baseline", name, scale),
                    _bars(shown, "tuned", name, scale),
                )
            )
    return panels
