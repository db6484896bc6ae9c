"""`mprtune train`: decide per variant (skip, resume, start), then run the work queue under a lock.

Jobs run with the project root as working directory (where the committed configs' relative paths
point); each run folder gets its own config copy with absolute paths. Never relaunch a finished
run: LLaMA-Factory would resume from its last checkpoint and overwrite the adapter.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprtune.config.matrix import Variant
from mprtune.config.render import training_yaml
from mprtune.data.datasets import data_problems, registry, training_data_sha256
from mprtune.data.sources import offline_mode
from mprtune.errors import ConfigError, DataError, LockError, MprtuneError
from mprtune.launch import backends
from mprtune.launch.env import job_env, venv_bin
from mprtune.launch.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    RUNNING,
    Executor,
    JobPaths,
    JobSpec,
    JobStatus,
    now,
    public_env,
)
from mprtune.launch.planner import (
    Estimate,
    Schedule,
    calibration_from_runs,
    check_widths,
    estimate,
    lpt_order,
    lpt_schedule,
)
from mprtune.launch.queue import Event, run_queue
from mprtune.launch.state import config_digest, derive_state, resume_point
from mprtune.models import ensure_base_models, resolved_path
from mprtune.paths import DATASET_INFO
from mprtune.workspace import Workspace

LOCK_FILE = ".mprtune-train.lock"


@dataclass(frozen=True)
class Decision:
    variant: str
    action: str  # start | resume | skip
    reason: str
    checkpoint: str | None = None


@dataclass(frozen=True)
class TrainPlan:
    specs: list[JobSpec]  # to launch, longest first
    decisions: list[Decision]
    schedule: Schedule
    warnings: list[str] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)  # the chosen ones, in matrix order (sweep tables)
    estimates: list[Estimate] = field(default_factory=list)  # of the jobs to launch: shapes, GPU-hours booked


def run_config(ws: Workspace, variant: Variant) -> str:
    """The run folder's copy of the rendered config: same recipe, absolute paths."""
    return training_yaml(
        ws.matrix,
        variant,
        output_dir=str(ws.run_dir(variant.name)),
        data_dir=str(ws.data_dir),
        model_path=resolved_path(variant.model, ws.root),
    )


def train_spec(ws: Workspace, variant: Variant, estimate_s: float = 0.0) -> JobSpec:
    run_dir = ws.run_dir(variant.name)
    # The resume point is decided when the job starts (launch/resume.py), so a job Slurm requeues
    # without mprtune also resumes from its newest complete checkpoint.
    command = [
        sys.executable,
        "-m",
        "mprtune.launch.resume",
        str(run_dir),
        "--",
        str(venv_bin() / "llamafactory-cli"),
        "train",
        str(JobPaths(run_dir).config),
    ]
    return JobSpec(
        name=variant.name,
        kind="train",
        folder=run_dir,
        command=tuple(command),
        env=job_env(ws.matrix, variant, run_dir),
        cwd=ws.root,
        config_text=run_config(ws, variant),
        estimate_s=estimate_s,
        width=variant.gpus,
        data_sha256=training_data_sha256(ws, variant.task.train),
        nodes=variant.nodes,
    )


def changed_since(ws: Workspace, variant: Variant, status: JobStatus | None, config_sha256: str) -> str:
    """What changed since the run was launched: "config", "training data", both, or "" (nothing known).

    The data's fingerprint lives in the status file, not in the config text, so runs launched
    before mprtune recorded it are not all reported as changed.
    """
    if status is None:
        return ""
    config = status.config_sha256 not in (None, config_sha256)
    data = False
    if status.data_sha256 is not None:  # data deleted since (None now) is not data changed
        now_sha256 = training_data_sha256(ws, variant.task.train)
        data = now_sha256 is not None and now_sha256 != status.data_sha256
    return " and ".join(what for what, changed in (("config", config), ("training data", data)) if changed)


def decide(ws: Workspace, variant: Variant, warn: Callable[[str], None] = lambda m: None) -> Decision:
    paths = JobPaths(ws.run_dir(variant.name))
    state = derive_state(paths, "train", warn)
    status = JobStatus.read(paths.status)
    wanted = config_digest(run_config(ws, variant))
    what = changed_since(ws, variant, status, wanted)
    changed = bool(what)
    if state == DONE:
        note = f" ({what} changed since: NOT retrained; delete the run folder to retrain)" if changed else ""
        return Decision(variant.name, "skip", "finished" + note)
    if state == RUNNING:
        return Decision(variant.name, "skip", f"running (job {status.job_id if status else '?'})")
    point = resume_point(paths)
    skipped = "".join(f"; skipped {folder.name}: {why}" for folder, why in point.skipped)
    if point.checkpoint is not None:
        if changed:
            return Decision(
                variant.name,
                "skip",
                f"has a checkpoint but its {what} changed: not resumed (delete the run folder to start over)",
            )
        return Decision(variant.name, "resume", f"resume from {point.checkpoint.name}{skipped}", str(point.checkpoint))
    if skipped and changed:
        return Decision(
            variant.name,
            "skip",
            f"{what} changed since its last attempt: not restarted (delete the run folder to start over)" + skipped,
        )
    return Decision(variant.name, "start", ("retry after failure" if state == FAILED else "new") + skipped)


def data_warnings(ws: Workspace, variants: list[Variant]) -> list[str]:
    """Training files a variant needs that are not prepared yet (one line, with the command to run)."""
    datasets = registry(ws).datasets
    local = {n: datasets[n] for v in variants for n in v.task.train if datasets[n].file}
    missing = sorted({str(ws.data_dir / d.file) for d in local.values() if not (ws.data_dir / d.file).exists()})
    problems = []
    if missing:
        tasks = " ".join(sorted({v.task.name for v in variants}))
        problems.append(
            f"training data missing: {', '.join(missing)}; run `mprtune prepare-data {tasks}` "
            f"(or use --profile demo for the bundled samples)"
        )
    info = ws.data_dir / DATASET_INFO
    if variants and not info.is_file():  # LLaMA-Factory finds datasets only through it
        profile = "" if ws.is_reference else f" --profile {ws.profile}"
        problems.append(f"{info} missing: run `mprtune render{profile}` (it writes the dataset registry)")
    return problems


def hub_warnings(ws: Workspace, variants: list[Variant]) -> list[str]:
    """Hub datasets LLaMA-Factory will download at launch while offline mode is on (they may be cached)."""
    switch = offline_mode()
    datasets = registry(ws).datasets
    hub = sorted({n for v in variants for n in v.task.train if datasets[n].hf_hub_url and not datasets[n].file})
    if not (switch and hub):
        return []
    return [
        f"offline mode is on ({switch}) and LLaMA-Factory downloads {', '.join(hub)} from the Hugging Face Hub "
        f"when the job starts: training fails unless they are in the local cache; declare local files instead"
    ]


def refuse_bad_data(ws: Workspace, variants: list[Variant]) -> None:
    """Rows LLaMA-Factory would fail on or silently drop: every problem at once, before anything launches."""
    problems = data_problems(ws, variants)
    if problems:
        raise DataError("\n".join(problems))


def plan_training(
    ws: Workspace,
    variants: list[Variant],
    slots: list[str] | None,
    warn: Callable[[str], None] = lambda m: None,
    check_data: bool = True,
    check_fits: Callable[[list[JobSpec]], list[str]] | None = None,
) -> TrainPlan:
    """Decide, estimate and schedule; `slots` None: a cluster queues the jobs (shown as one "cluster" slot).

    A variant needing more GPUs than `slots` holds (or, through `check_fits`, more nodes or GPUs per
    node than the cluster has), or data LLaMA-Factory cannot use, is an error here, before anything runs.
    """
    if check_data:
        refuse_bad_data(ws, [v for v in variants if not JobPaths(ws.run_dir(v.name)).is_complete("train")])
    calibration = calibration_from_runs(ws)
    estimates = {v.name: estimate(ws, v, calibration) for v in variants}
    if slots is not None:
        check_widths(list(estimates.values()), slots)
    decisions = [decide(ws, v, warn) for v in variants]
    to_run = {d.variant for d in decisions if d.action != "skip"}
    ordered = [e for e in lpt_order(list(estimates.values())) if e.variant in to_run]
    specs = [train_spec(ws, ws.matrix.variants[e.variant], e.seconds) for e in ordered]
    problems = check_fits(specs) if check_fits else []
    if problems:
        raise ConfigError(problems)
    running = [ws.matrix.variants[name] for name in to_run]
    warnings = data_warnings(ws, running) + hub_warnings(ws, running)
    shown = ordered if slots is not None else [dataclasses.replace(e, width=1, nodes=1) for e in ordered]
    schedule = lpt_schedule(shown, slots or ["cluster"])
    return TrainPlan(specs, decisions, schedule, warnings, list(variants), ordered)


@contextmanager
def runs_lock(runs: Path) -> Iterator[None]:
    """One `train` per runs dir. flock dies with its holder, so a stale lock is taken over for free.

    The file is used through its raw descriptor: no buffered pid left to flush into a full disk.
    """
    runs.mkdir(parents=True, exist_ok=True)
    fd = os.open(runs / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LockError(
            f"{runs}: another `mprtune train` (pid {holder}) is using this runs dir; wait for it, or use --runs-dir"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    except OSError:
        pass  # the pid is only a hint for the message above (a full disk may refuse it); the flock is what locks
    try:
        yield
    finally:
        os.close(fd)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event instead of raising, so the queue can stop its children cleanly."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _once_per_warning(on_event: Callable[[Event], None]) -> Callable[[Event], None]:
    """The plan and then the queue read a damaged status file before the queue replaces it: one line."""
    seen: set[str] = set()

    def forward(event: Event) -> None:
        if event.kind == "warning":
            if event.message in seen:
                return
            seen.add(event.message)
        on_event(event)

    return forward


def train(
    ws: Workspace,
    variants: list[Variant],
    executor: Executor,
    retries: int,
    on_event: Callable[[Event], None],
    on_plan: Callable[[TrainPlan], None] = lambda plan: None,
) -> dict[str, JobStatus]:
    """Launch what needs launching; returns the final status of every job run in this call."""
    on_event = _once_per_warning(on_event)
    unfinished = [v for v in variants if not JobPaths(ws.run_dir(v.name)).is_complete("train")]
    for problem in data_warnings(ws, unfinished):  # before the lock: a refused train creates nothing
        raise MprtuneError(problem)
    refuse_bad_data(ws, unfinished)
    with runs_lock(ws.runs), stop_on_signals() as stop:
        warn = lambda message: on_event(Event("warning", "train", None, message))
        plan = plan_training(ws, variants, executor.slots(), warn, check_data=False, check_fits=executor.check_fits)
        on_plan(plan)
        if not plan.specs:
            return {}
        ensure_base_models(ws.matrix, ws.root, sorted({ws.matrix.variants[s.name].model.name for s in plan.specs}))
        for spec in plan.specs:  # a new `train` gives failed variants a fresh set of retries
            status = JobStatus.read(spec.paths.status)
            if status and status.state == FAILED:
                status.retries = 0
                with suppress(OSError):  # a full disk: the queue reports it when the job starts
                    status.write(spec.paths.status)

        def respec(spec: JobSpec) -> JobSpec:
            return train_spec(ws, ws.matrix.variants[spec.name], spec.estimate_s)

        results = run_queue(plan.specs, executor, retries, respec, on_event, stop)
        if stop.is_set():
            raise KeyboardInterrupt
    return results


def cancel_jobs(ws: Workspace, variants: list[Variant], warn: Callable[[str], None] = lambda m: None) -> list[str]:
    """Stop running jobs for good (no retry); only jobs the backend proves are ours are signalled."""
    cancelled = []
    for variant in variants:
        paths = JobPaths(ws.run_dir(variant.name))
        status = JobStatus.read(paths.status, warn)
        if status is None or status.state != RUNNING:
            continue
        backend = backends.for_status(status)
        if not backend.alive(status):
            continue
        status.state, status.finished_at, status.reason = CANCELLED, now(), "cancelled by `mprtune cancel`"
        status.write(paths.status)  # first, so the queue sees a cancellation, not a failure to retry
        if backend.cancel(status):
            cancelled.append(variant.name)
    return cancelled


def describe_spec(spec: JobSpec) -> dict[str, Any]:
    return {"name": spec.name, "cwd": str(spec.cwd), "command": list(spec.command), "env": public_env(spec.env)}
