"""Jobs and executors (submitit-style): `Executor.submit(spec, slot) -> JobHandle`.

A job is one `llamafactory-cli` invocation with exactly one GPU visible. Each job owns a folder;
every path of it derives from that folder (JobPaths), and its state can be rebuilt from the
files there after any interruption.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mprtune.render import atomic_write

PENDING, RUNNING, DONE, FAILED, INTERRUPTED, CANCELLED = (
    "pending", "running", "done", "failed", "interrupted", "cancelled")
SECRET_ENV = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


@dataclass(frozen=True)
class JobPaths:
    """Everything mprtune writes for a job lives under `folder`, beside LLaMA-Factory's output."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "job.yaml"

    @property
    def stdout(self) -> Path:
        return self.folder / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.folder / "stderr.log"

    @property
    def status(self) -> Path:
        return self.folder / "mprtune-status.json"

    @property
    def trainer_log(self) -> Path:
        return self.folder / "trainer_log.jsonl"

    def checkpoints(self) -> list[Path]:
        found = [p for p in self.folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
        return sorted(found, key=lambda p: int(p.name.split("-")[-1]))

    def latest_checkpoint(self) -> Path | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None


@dataclass(frozen=True)
class JobSpec:
    name: str
    kind: str  # train | predict | export
    folder: Path
    command: tuple[str, ...]
    env: dict[str, str]  # added to the inherited environment; never holds secrets
    cwd: Path
    config_text: str  # written to JobPaths.config before launch
    estimate_s: float = 0.0

    @property
    def paths(self) -> JobPaths:
        return JobPaths(self.folder)


@dataclass
class JobStatus:
    """The small status file of a job folder; `state` is refined by files LLaMA-Factory writes."""

    name: str
    kind: str
    state: str = PENDING
    slot: str | None = None
    attempt: int = 0
    retries: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    job_id: str | None = None  # the backend's id (pid locally, Slurm job id on a cluster)
    backend: str = "local"
    returncode: int | None = None
    reason: str | None = None
    log_tail: str | None = None
    config_sha256: str | None = None
    windows: list[list[float | None]] = field(default_factory=list)  # [start, end] per attempt

    @classmethod
    def read(cls, path: Path) -> "JobStatus | None":
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def write(self, path: Path) -> None:
        atomic_write(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


class JobHandle(Protocol):
    spec: JobSpec
    slot: str | None

    @property
    def job_id(self) -> str: ...

    def poll(self) -> int | None:
        """None while the job runs, else its exit code (negative: killed by that signal)."""

    def cancel(self) -> None: ...

    def done(self) -> bool: ...

    def logs(self, lines: int = 40) -> str: ...


class Executor(Protocol):
    name: str

    def slots(self) -> list[str] | None:
        """The slots jobs are queued over, or None when a cluster scheduler queues them."""

    def submit(self, spec: JobSpec, slot: str | None) -> JobHandle: ...


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def job_logs(spec: JobSpec, lines: int = 40) -> str:
    """The end of a job's stdout then stderr: a traceback's last line, the error, comes last."""
    return tail(spec.paths.stdout, lines) + "\n" + tail(spec.paths.stderr, lines)


def now() -> float:
    return time.time()


def public_env(env: dict[str, Any]) -> dict[str, str]:
    """The environment as it may be shown or stored: secrets masked."""
    return {k: ("***" if k in SECRET_ENV else str(v)) for k, v in env.items()}
