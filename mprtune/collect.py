"""`mprtune collect`: an inventory of the run folders (adapters, losses, timings) and their loss curves."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mprtune.jobs import JobPaths
from mprtune.matrix import Matrix
from mprtune.render import atomic_write
from mprtune.runstate import derive_state, loss_curve


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


def _train_results(folder: Path) -> dict:
    try:
        return json.loads((folder / "train_results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def collect_runs(matrix: Matrix, runs: Path) -> list[RunRecord]:
    records = []
    for variant in matrix.variants.values():
        paths = JobPaths(runs / variant.name)
        curve = loss_curve(paths.trainer_log)
        results = _train_results(paths.folder)
        adapter = paths.folder / "adapter_model.safetensors"
        records.append(RunRecord(
            variant=variant.name, task=variant.task.name, model=variant.model.name,
            state=derive_state(paths, "train"),
            adapter_path=str(paths.folder) if adapter.is_file() else None,
            adapter_bytes=adapter.stat().st_size if adapter.is_file() else None,
            final_loss=curve[-1][1] if curve else None,
            best_loss=min(loss for _, loss in curve) if curve else None,
            train_seconds=results.get("train_runtime"),
            samples_per_second=results.get("train_samples_per_second"),
            steps=curve[-1][0] if curve else None,
            checkpoints=[p.name for p in paths.checkpoints()]))
    return records


def loss_curves(matrix: Matrix, runs: Path) -> dict[str, list[tuple[int, float]]]:
    curves = {name: loss_curve(JobPaths(runs / name).trainer_log) for name in matrix.variants}
    return {name: curve for name, curve in curves.items() if curve}


def write_inventory(records: list[RunRecord], out: Path) -> list[Path]:
    rows = [asdict(r) for r in records]
    atomic_write(out / "collect.json", json.dumps(rows, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["variant"])
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "checkpoints": ";".join(row["checkpoints"])})
    atomic_write(out / "collect.csv", buffer.getvalue())
    return [out / "collect.json", out / "collect.csv"]


def collect(matrix: Matrix, runs: Path, out: Path) -> tuple[list[RunRecord], list[Path]]:
    """Inventory (JSON, CSV) and the loss-curve PNG of every variant, written into `out`."""
    from mprtune.report import plot_loss_curves

    records = collect_runs(matrix, runs)
    written = write_inventory(records, out)
    written.append(plot_loss_curves(loss_curves(matrix, runs), out / "loss_curves.png"))
    return records, written
