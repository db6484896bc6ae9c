"""metrics.png of a report: per task kind, its main metric and exact match, baseline vs tuned per variant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mprtune.evaluate.formatting import label
from mprtune.plots import Bar, Panel
from mprtune.tasks import TASK_KINDS

# Candidates for a task kind's panel; knowledge shows the one that moved most (QA or descriptions).
PANEL_METRICS = {"grammar": ("gleu",), "paraphrase": ("ibleu",), "knowledge": ("qa_f1", "rouge_l", "qa_exact_match")}


def panel_metric(kind: str, variants: Sequence[Mapping[str, Any]]) -> str:
    """The metric a task kind's panel shows: its main one, or for knowledge the one that moved most."""
    candidates = [n for n in PANEL_METRICS[kind] if any(n in v["diff"] for v in variants)]
    if not candidates:
        return PANEL_METRICS[kind][0]
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
    for kind in TASK_KINDS:
        variants = [v for v in results["variants"] if v["task_kind"] == kind]
        for name in (panel_metric(kind, variants), "exact_match") if variants else ():
            shown = [v for v in variants if name in v["baseline"]["metrics"] and name in v["tuned"]["metrics"]]
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
