"""PNG plots shared by `collect` and the report: bar panels with intervals, and loss curves.

Callers hand over plain numbers already on their display scale; this module knows nothing about
metrics, so both the launch and the evaluate layers can use it. matplotlib is imported lazily.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.io import atomic_write


@dataclass(frozen=True)
class Bar:
    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Panel:
    """One subplot: baseline vs tuned bars per label (variant)."""

    title: str
    labels: list[str]
    baseline: list[Bar]
    tuned: list[Bar]


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, metadata={"Software": None})
    return atomic_write(path, buffer.getvalue())


def _errors(bars: Sequence[Bar]) -> list[list[float]]:
    """Asymmetric error bars; 0 where no interval was computed."""
    lows = [0.0 if b.low is None else max(0.0, b.value - b.low) for b in bars]
    highs = [0.0 if b.high is None else max(0.0, b.high - b.value) for b in bars]
    return [lows, highs]


def plot_panels(panels: Sequence[Panel], path: Path, title: str) -> Path:
    """Panels two per row; a panel without bars is never drawn (no empty axes)."""
    from matplotlib.figure import Figure

    panels = [p for p in panels if p.labels]
    columns = 2 if len(panels) > 1 else 1
    rows = max(1, -(-len(panels) // columns))
    fig = Figure(figsize=(5.5 * columns, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).flatten()
    for ax, panel in zip(axes, panels, strict=False):
        x = range(len(panel.labels))
        for offset, name, bars, color in (
            (-0.2, "baseline", panel.baseline, "#9aa5b1"),
            (0.2, "tuned", panel.tuned, "#2f6db5"),
        ):
            ax.bar(
                [i + offset for i in x],
                [b.value for b in bars],
                width=0.4,
                color=color,
                label=name,
                yerr=_errors(bars),
                capsize=4,
            )
        ax.set_xlim(-0.9, len(panel.labels) - 0.1)  # a lone variant's bars stay bar-shaped
        ax.set_xticks(list(x), panel.labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(panel.title, fontsize=10)
        ax.legend(fontsize=8)
    for ax in axes[len(panels) :]:
        ax.axis("off")
    if not panels:
        axes[0].text(0.5, 0.5, "no variants", ha="center", va="center")
    fig.suptitle(title)
    return _save(fig, path)


def plot_loss_curves(curves: Mapping[str, Sequence[tuple[int, float]]], path: Path) -> Path:
    """Training loss per variant: one axis for a few runs, small multiples (shared y) for many."""
    from matplotlib.figure import Figure

    curves = {name: points for name, points in curves.items() if points}
    names = sorted(curves)
    if len(names) <= 4:
        fig = Figure(figsize=(9, 4.5), layout="constrained")
        ax = fig.subplots()
        for name in names:
            steps, losses = zip(*curves[name], strict=False)
            ax.plot(steps, losses, label=name, linewidth=1.4)
        if names:
            ax.set_xlabel("step")
            ax.set_ylabel("training loss")
            ax.set_title("Training loss")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, "No loss curves recorded", ha="center", va="center", fontsize=14)
        return _save(fig, path)
    columns = 3 if len(names) > 4 else 2
    rows = -(-len(names) // columns)
    fig = Figure(figsize=(4.2 * columns, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharey=True).flatten()
    for ax, name in zip(axes, names, strict=False):
        steps, losses = zip(*curves[name], strict=False)
        ax.plot(steps, losses, linewidth=1.3, color="#2f6db5")
        ax.set_title(name, fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names) :]:
        ax.axis("off")
    fig.suptitle("Training loss per variant (shared y axis)")
    return _save(fig, path)
