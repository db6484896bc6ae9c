"""`mprtune status`: one row per variant, rebuilt from its run folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from mprtune.launch.jobs import RUNNING, JobPaths, JobStatus
from mprtune.launch.state import derive_state
from mprtune.launch.trainer_log import read_progress
from mprtune.workspace import Workspace


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
    node_logs: list[str] = field(default_factory=list)  # a multi-node job's; progress is rank 0's (node-0)

    def as_dict(self) -> dict:
        return asdict(self)


def status_rows(ws: Workspace, warn: Callable[[str], None] = lambda message: None) -> list[StatusRow]:
    rows = []
    for name in ws.matrix.variants:
        paths = JobPaths(ws.run_dir(name))
        state = derive_state(paths, "train", warn)  # reports a damaged status file or train_results.json
        status = JobStatus.read(paths.status) or JobStatus(name, "train")
        progress = read_progress(paths.trainer_log, warn)
        rows.append(
            StatusRow(
                variant=name,
                state=state,
                slot=status.slot,
                started_at=status.started_at,
                finished_at=status.finished_at,
                step=progress.step,
                total_steps=progress.total_steps,
                loss=progress.loss,
                eta=progress.remaining if state == RUNNING else None,
                retries=status.retries,
                reason=status.reason if state in ("failed", "interrupted") else None,
                log=str(paths.stderr),
                windows=status.windows,
                node_logs=[str(p) for p in paths.node_logs()],
            )
        )
    return rows
