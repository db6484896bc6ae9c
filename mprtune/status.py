"""`mprtune status`: one row per variant, rebuilt from its run folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from mprtune.jobs import JobPaths, JobStatus
from mprtune.matrix import Matrix
from mprtune.runstate import derive_state, read_progress


@dataclass(frozen=True)
class StatusRow:
    variant: str
    state: str
    slot: str | None
    started_at: float | None
    finished_at: float | None
    step: int | None
    total_steps: int | None
    loss: float | None
    eta: str | None
    retries: int
    reason: str | None
    log: str
    windows: list

    def as_dict(self) -> dict:
        return asdict(self)


def status_rows(matrix: Matrix, runs: Path) -> list[StatusRow]:
    rows = []
    for name in matrix.variants:
        paths = JobPaths(runs / name)
        status = JobStatus.read(paths.status) or JobStatus(name, "train")
        progress = read_progress(paths.trainer_log)
        state = derive_state(paths, "train")
        rows.append(StatusRow(
            variant=name, state=state, slot=status.slot, started_at=status.started_at,
            finished_at=status.finished_at, step=progress.step, total_steps=progress.total_steps,
            loss=progress.loss, eta=progress.remaining if state == "running" else None,
            retries=status.retries, reason=status.reason if state in ("failed", "interrupted") else None,
            log=str(paths.stderr), windows=status.windows))
    return rows
