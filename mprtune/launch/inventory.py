"""`mprtune collect`: an inventory of the run folders (adapters, losses, timings) and their loss curves."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mprtune.io import Warn, atomic_write
from mprtune.launch.jobs import JobPaths
from mprtune.launch.state import derive_state, read_train_results
from mprtune.launch.trainer_log import loss_curve
from mprtune.workspace import Workspace


@dataclass(frozen=True)
class RunRecord:
    variant: str
    task: str
    model: str
    state: str
    adapter_path: str | None
    adapter_bytes: int | None
    final_loss: float | None
    best_loss: float | None
    train_seconds: float | None
    samples_per_second: float | None
    steps: int | None
    checkpoints: list[str]


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def collect_runs(ws: Workspace, warn: Warn = lambda message: None) -> list[RunRecord]:
    records = []
    for variant in ws.variants():
        paths = JobPaths(ws.run_dir(variant.name))
        curve = loss_curve(paths.trainer_log, warn)
        results = read_train_results(paths.folder)  # derive_state below reports a damaged one
        adapter = paths.folder / "adapter_model.safetensors"
        records.append(
            RunRecord(
                variant=variant.name,
                task=variant.task.name,
                model=variant.model.name,
                state=derive_state(paths, "train", warn),
                adapter_path=str(paths.folder) if adapter.is_file() else None,
                adapter_bytes=adapter.stat().st_size if adapter.is_file() else None,
                final_loss=curve[-1][1] if curve else None,
                best_loss=min(loss for _, loss in curve) if curve else None,
                train_seconds=_number(results.get("train_runtime")),
                samples_per_second=_number(results.get("train_samples_per_second")),
                steps=curve[-1][0] if curve else None,
                checkpoints=[p.name for p in paths.checkpoints()],
            )
        )
    return records


def loss_curves(ws: Workspace, names: set[str] | None = None) -> dict[str, list[tuple[int, float]]]:
    curves = {
        name: loss_curve(JobPaths(ws.run_dir(name)).trainer_log)
        for name in ws.matrix.variants
        if names is None or name in names
    }
    return {name: curve for name, curve in curves.items() if curve}


def write_inventory(records: list[RunRecord], out: Path) -> list[Path]:
    """collect.json and collect.csv from one table (pandas), checkpoints `;`-joined in the CSV."""
    import pandas as pd

    table = pd.DataFrame([asdict(r) for r in records], columns=list(RunRecord.__dataclass_fields__))
    atomic_write(out / "collect.json", json.dumps([asdict(r) for r in records], indent=2) + "\n")
    flat = table.assign(checkpoints=table["checkpoints"].map(";".join))
    atomic_write(out / "collect.csv", flat.to_csv(index=False))
    return [out / "collect.json", out / "collect.csv"]


def collect(ws: Workspace, out: Path, warn: Warn = lambda message: None) -> tuple[list[RunRecord], list[Path]]:
    """Inventory (JSON, CSV) and the loss-curve PNG of every variant, written into `out`."""
    from mprtune.plots import plot_loss_curves

    records = collect_runs(ws, warn)
    written = write_inventory(records, out)
    written.append(plot_loss_curves(loss_curves(ws), out / "loss_curves.png"))
    return records, written
