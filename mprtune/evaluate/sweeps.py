"""The report across a sweep: each task metric against the axis values, the best variant marked,
and no winner claimed from noise.

The best variant of a metric is the one with the best tuned value; it is called a winner only when
its confidence interval is clear of every other variant's interval on the same eval rows. Overlapping
intervals (or a missing one) mean the grid cannot tell those variants apart: the report says so
instead of crowning the larger point estimate. (Overlap is the conservative test: two 95% intervals
that do not overlap differ at a stricter level than 5%.)

`results_sweeps` builds the results.json entries; `sweep_sections` reads them back for report.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mprtune.config.matrix import Matrix, Variant
from mprtune.config.sweeps import number_token
from mprtune.evaluate.presentation import presentation_of
from mprtune.metrics.registry import direction


def goodness(metric: str, value: float, spec: Mapping[str, Any] | None = None) -> float | None:
    """How good one value of `metric` is, larger = better (None: a descriptive metric, no "best"):
    the ONE place sweeps decide "better", following the metric's direction (registry or `spec`)."""
    better, target = direction(metric, spec)
    if better == "none":
        return None
    if better == "closer":
        assert target is not None
        return -abs(value - target)
    return value if better == "higher" else -value


# --- results.json -----------------------------------------------------------------------------


def variant_sweep(variant: Variant) -> dict[str, Any] | None:
    """A results variant's `sweep` entry: its sweep and axis values, or None for a hand-written one."""
    if variant.sweep is None:
        return None
    return {"name": variant.sweep.sweep, "values": variant.sweep.as_dict()}


def results_sweeps(matrix: Matrix, variants: Sequence[Variant]) -> list[dict[str, Any]]:
    """One entry per sweep with a compared variant: its base, axes, grid size and compared variants."""
    compared = {v.name for v in variants}
    entries = []
    for sweep in matrix.sweeps.values():
        names = [name for name in sweep.variants if name in compared]
        if names:
            entries.append(
                {
                    "name": sweep.name,
                    "base": sweep.base,
                    "axes": [list(axis) for axis in sweep.axes],
                    "grid_size": len(sweep.variants),
                    "variants": names,
                }
            )
    return entries


# --- report.md --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    metric: str
    best: str  # the variant with the best tuned value
    tied: list[str]  # variants whose interval overlaps the best's (or lacks one): no winner among them
    equal: bool = False  # every variant has the same value: there is no "best" at all

    @property
    def clear(self) -> bool:
        return not self.tied


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two intervals overlap, or when either is missing (then nothing can be told apart)."""
    if None in (a.get("ci_low"), a.get("ci_high"), b.get("ci_low"), b.get("ci_high")):
        return True
    return a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"]


def verdict(
    metric: str, stats: Mapping[str, Mapping[str, Any]], spec: Mapping[str, Any] | None = None
) -> Verdict | None:
    """The best of `stats` (variant -> tuned stat, in grid order) and who it cannot be told apart from."""
    if len(stats) < 2 or direction(metric, spec)[0] == "none":
        return None
    best = max(
        stats, key=lambda name: goodness(metric, stats[name]["value"], spec) or 0.0
    )  # first of equals wins the tie
    tied = [name for name in stats if name != best and _overlap(stats[best], stats[name])]
    equal = len({stat["value"] for stat in stats.values()}) == 1
    return Verdict(metric, best, tied, equal)


def axis_value(value: Any) -> str:
    """An axis value as the variant names spell it: 1e-4, 0.03, 16, true, cosine."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_token(value)
    return str(value)


@dataclass(frozen=True)
class SweepSection:
    name: str
    base: str
    keys: list[str]  # swept keys, in axis order
    axes_text: str  # e.g. "lora_rank × (learning_rate, warmup_ratio)"
    compared: int
    grid_size: int
    rows: list[dict[str, Any]]  # variant, values (key -> text), stats (metric -> tuned stat)
    metrics: list[str]
    verdicts: dict[str, Verdict]


def sweep_sections(results: Mapping[str, Any]) -> list[SweepSection]:
    """One section per sweep, with the metrics of its task's table (from the results' presentation)."""
    by_name = {v["variant"]: v for v in results["variants"]}
    specs = results["metrics"]
    sections = []
    for sweep in results["sweeps"]:
        members = [by_name[name] for name in sweep["variants"]]
        table = presentation_of(members[0])["table"]
        metrics = [m for m in table if all(m in v["tuned"]["metrics"] for v in members)]
        keys = [key for axis in sweep["axes"] for key in axis]
        rows = [
            {
                "variant": v["variant"],
                "values": {k: axis_value(v["sweep"]["values"][k]) for k in keys},
                "stats": {m: v["tuned"]["metrics"][m] for m in metrics},
            }
            for v in members
        ]
        verdicts = {
            m: found
            for m in metrics
            if (found := verdict(m, {row["variant"]: row["stats"][m] for row in rows}, specs.get(m))) is not None
        }
        axes_text = " × ".join(axis[0] if len(axis) == 1 else f"({', '.join(axis)})" for axis in sweep["axes"])
        sections.append(
            SweepSection(
                sweep["name"], sweep["base"], keys, axes_text, len(members), sweep["grid_size"], rows, metrics, verdicts
            )
        )
    return sections
