"""Jobs and executors (submitit-style): `Executor.submit(spec, slot) -> JobHandle`.

A job is one `llamafactory-cli` invocation with exactly the GPUs of its slot visible; a job
`width` slots wide gets them all at once, as one slot string joined by "," (e.g. "0,1"). Each job owns
a folder; every path of it derives from that folder (JobPaths), and its state can be rebuilt from
the files there after any interruption. Backend knowledge (how to run, judge liveness, cancel)
lives behind the Executor interface only.
"""

from __future__ import annotations

import errno
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from mprtune.io import Warn, atomic_write, quiet, tail

PENDING, RUNNING, DONE, FAILED, INTERRUPTED, CANCELLED = (
    "pending",
    "running",
    "done",
    "failed",
    "interrupted",
    "cancelled",
)
SECRET_ENV = ("WANDB_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# Files LLaMA-Factory writes last; their presence means the job finished.
COMPLETE_FILES = {
    "train": ("train_results.json", "adapter_model.safetensors"),
    "predict": ("generated_predictions.jsonl", "predict_results.json"),
}

SLOT_SEP = ","  # a wide job's slots, joined: "0,1" (slot names never hold a comma)


def slot_parts(slot: str | None) -> list[str]:
    """The single slots a (possibly joined) slot string names; [] for None (a cluster job)."""
    return slot.split(SLOT_SEP) if slot else []


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

    def is_complete(self, kind: str) -> bool:
        return all((self.folder / name).is_file() for name in COMPLETE_FILES[kind])

    def node_log(self, rank: int | str) -> Path:
        """A multi-node job's log of one node (rank 0 = the first node, where LLaMA-Factory reports)."""
        return self.folder / f"node-{rank}.log"

    def node_logs(self) -> list[Path]:
        found = [p for p in self.folder.glob("node-*.log") if p.stem.split("-")[-1].isdigit()]
        return sorted(found, key=lambda p: int(p.stem.split("-")[-1]))

    def checkpoints(self) -> list[Path]:
        found = [p for p in self.folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
        return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


@dataclass(frozen=True)
class JobSpec:
    name: str
    kind: str  # train | predict
    folder: Path
    command: tuple[str, ...]
    env: dict[str, str]  # added to the inherited environment; never holds secrets
    cwd: Path
    config_text: str  # written to JobPaths.config before launch
    estimate_s: float = 0.0
    extra_files: dict[str, str] = field(default_factory=dict)  # name -> text, written beside the config
    width: int = 1  # slots (GPUs) held at once; > 1 runs under torchrun with NPROC_PER_NODE=width
    data_sha256: str | None = None  # training data fingerprint, recorded in the status at launch
    nodes: int = 1  # cluster nodes, `width` GPUs on each, one torchrun per node (Slurm only)

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
    job_id: str | None = None  # the backend's id (process group leader's pid locally, Slurm job id)
    identity: str | None = None  # what proves job_id is still OUR job (locally: the process start time)
    backend: str = "local"
    returncode: int | None = None
    reason: str | None = None
    log_tail: str | None = None
    config_sha256: str | None = None
    data_sha256: str | None = None  # the training data it was launched on (absent in older status files)
    windows: list[list[float | None]] = field(default_factory=list)  # [start, end] per attempt

    @classmethod
    def read(cls, path: Path, warn: Warn = quiet) -> JobStatus | None:
        """The status file, or None when absent; a damaged one is reported through `warn` and ignored."""
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            warn(f"{path}: damaged status file ignored ({type(exc).__name__}); state is rebuilt from the run folder")
            return None
        problem = _shape_problem(data)
        if problem:
            warn(f"{path}: damaged status file ignored ({problem}); state is rebuilt from the run folder")
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def write(self, path: Path) -> None:
        """Atomically; on a full disk, rewrite the existing file in place without the log tail.

        The in-place copy fits in the blocks the file already holds, so a failure can still be
        recorded when the disk is full (a crash halfway leaves a damaged file, which `read` reports
        and the run folder's files replace).
        """
        try:
            atomic_write(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.is_file():
                raise
            compact = (json.dumps({**asdict(self), "log_tail": None}, sort_keys=True) + "\n").encode()
            with path.open("r+b") as handle:
                handle.write(compact)
                handle.truncate()


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shape_problem(data: Any) -> str | None:
    """Why a parsed status file cannot be a JobStatus (wrong types are as damaged as bad JSON)."""
    if not isinstance(data, dict):
        return f"expected an object, got {type(data).__name__}"
    types = {f.name: f.type for f in fields(JobStatus)}
    for key in ("name", "kind"):
        if not isinstance(data.get(key), str):
            return f"'{key}' missing or not a string"
    for key, value in data.items():
        if key not in types or value is None:
            continue
        kind = str(types[key])
        if kind.startswith("int") and (not isinstance(value, int) or isinstance(value, bool)):
            return f"'{key}' is not an integer"
        if kind.startswith("float") and not _finite_number(value):
            return f"'{key}' is not a finite number"
        if kind.startswith("str") and not isinstance(value, str):
            return f"'{key}' is not a string"
        if key == "windows" and not (
            isinstance(value, list)
            and all(
                isinstance(w, list) and len(w) == 2 and all(x is None or _finite_number(x) for x in w) for w in value
            )
        ):
            return "'windows' is not a list of [start, end] pairs"
    return None


class JobHandle(Protocol):
    spec: JobSpec
    slot: str | None

    @property
    def job_id(self) -> str: ...

    @property
    def identity(self) -> str | None: ...

    def poll(self) -> int | None:
        """None while the job runs, else its exit code (negative: killed by that signal)."""

    def cancel(self) -> None: ...

    def done(self) -> bool: ...

    def logs(self, lines: int = 40) -> str: ...


class Executor(Protocol):
    """Everything callers need from a backend; nothing outside the backends branches on its name."""

    name: str
    detach: bool  # True: submission is the end of `train` (the cluster runs the jobs without us)

    def slots(self) -> list[str] | None:
        """The slots jobs are queued over, or None when a cluster scheduler queues them."""

    def submit(self, spec: JobSpec, slot: str | None) -> JobHandle:
        """Start `spec` on `slot` (spec.width slots joined by SLOT_SEP), or hand it to the cluster (None)."""

    def alive(self, status: JobStatus) -> bool:
        """Whether the job a status file records is still running AND provably ours."""

    def cancel(self, status: JobStatus) -> bool:
        """Stop the job a status file records (from any earlier `mprtune` process); False if not ours/alive."""

    def devices(self, slot: str | None) -> str:
        """CUDA_VISIBLE_DEVICES as a job on `slot` sees it ("0,1" for a wide job, "" for CPU slots)."""

    def describe(self, spec: JobSpec) -> str | None:
        """What the backend would submit for `spec` beyond the command (e.g. an sbatch script), for --dry-run."""

    def check_fits(self, specs: list[JobSpec]) -> list[str]:
        """Why some of `specs` can never run here (e.g. more nodes than the partition has); [] when all fit."""


def job_logs(spec: JobSpec, lines: int = 40) -> str:
    """The end of a job's stdout then stderr: a traceback's last line, the error, comes last."""
    return tail(spec.paths.stdout, lines) + "\n" + tail(spec.paths.stderr, lines)


def now() -> float:
    return time.time()


def public_env(env: dict[str, Any]) -> dict[str, str]:
    """The environment as it may be shown or stored: secrets masked."""
    return {k: ("***" if k in SECRET_ENV else str(v)) for k, v in env.items()}
