"""`mprtune train`: decide per variant (skip, resume, start), then run the work queue under a lock.

Jobs run with the project root as working directory (where the committed configs' relative paths
point); each run folder gets its own config copy with absolute paths. Never relaunch a finished
run: LLaMA-Factory would resume from its last checkpoint and overwrite the adapter.
"""

from __future__ import annotations

import fcntl
import hashlib
import netrc
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from mprtune.errors import LockError, MprtuneError
from mprtune.jobs import CANCELLED, DONE, FAILED, RUNNING, JobPaths, JobSpec, JobStatus, now, public_env
from mprtune.matrix import Matrix, Variant
from mprtune.models import ensure_base_models, resolved_path
from mprtune.planner import Schedule, calibration_from_runs, estimate, lpt_order, lpt_schedule
from mprtune.queue import Event, run_queue
from mprtune.render import training_yaml
from mprtune.runstate import config_digest, derive_state

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


def venv_bin() -> Path:
    return Path(sys.executable).parent


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def job_env(matrix: Matrix, variant: Variant, run_dir: Path) -> dict[str, str]:
    """What each training job adds to the inherited environment (secrets are inherited, never written)."""
    env = {
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",  # LLaMA-Factory shells out to torchrun
        "WANDB_PROJECT": matrix.wandb_project,
        "WANDB_RUN_GROUP": variant.task.name,
        "WANDB_NAME": variant.name,
        "WANDB_DIR": str(run_dir),
        "WANDB_RUN_ID": stable_run_id(matrix, variant.name),
        "WANDB_RESUME": "allow",
        "DISABLE_VERSION_CHECK": "1",
    }
    if os.environ.get("WANDB_MODE"):
        env["WANDB_MODE"] = os.environ["WANDB_MODE"]
    elif not wandb_logged_in():
        env["WANDB_MODE"] = "offline"
    if variant.recipe.get("deepspeed"):
        env.update({"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1"})
    return env


def stable_run_id(matrix: Matrix, variant_name: str) -> str:
    """Same id for every attempt of a variant, so a resumed job continues the same W&B run."""
    digest = hashlib.sha1(f"{matrix.wandb_project}/{matrix.profile}/{variant_name}".encode()).hexdigest()[:8]
    return f"{variant_name}-{digest}"


def run_config(matrix: Matrix, variant: Variant, run_dir: Path, root: Path) -> str:
    """The run folder's copy of the rendered config: same recipe, absolute paths."""
    return training_yaml(matrix, variant, output_dir=str(run_dir), data_dir=str(root / matrix.data_dir),
                         model_path=resolved_path(variant.model, root))


def train_spec(matrix: Matrix, variant: Variant, runs: Path, root: Path, estimate_s: float = 0.0) -> JobSpec:
    run_dir = runs / variant.name
    command = [str(venv_bin() / "llamafactory-cli"), "train", str(JobPaths(run_dir).config)]
    checkpoint = JobPaths(run_dir).latest_checkpoint()
    if checkpoint is not None:
        command.append(f"resume_from_checkpoint={checkpoint}")
    return JobSpec(name=variant.name, kind="train", folder=run_dir, command=tuple(command),
                   env=job_env(matrix, variant, run_dir), cwd=root,
                   config_text=run_config(matrix, variant, run_dir, root), estimate_s=estimate_s)


def decide(matrix: Matrix, variant: Variant, runs: Path, root: Path) -> Decision:
    paths = JobPaths(runs / variant.name)
    state = derive_state(paths, "train")
    status = JobStatus.read(paths.status)
    wanted = config_digest(run_config(matrix, variant, paths.folder, root))
    changed = status is not None and status.config_sha256 not in (None, wanted)
    if state == DONE:
        note = " (config changed since: NOT retrained; delete the run folder to retrain)" if changed else ""
        return Decision(variant.name, "skip", "finished" + note)
    if state == RUNNING:
        return Decision(variant.name, "skip", f"running (pid {status.pid if status else '?'})")
    checkpoint = paths.latest_checkpoint()
    if checkpoint is not None:
        if changed:
            return Decision(variant.name, "skip", "has a checkpoint but its config changed: not resumed "
                            "(delete the run folder to start over)")
        return Decision(variant.name, "resume", f"resume from {checkpoint.name}", str(checkpoint))
    return Decision(variant.name, "start", "retry after failure" if state == FAILED else "new")


def plan_training(matrix: Matrix, variants: list[Variant], runs: Path, root: Path, slots: list[str]) -> TrainPlan:
    calibration = calibration_from_runs(matrix, runs, root)
    estimates = {v.name: estimate(matrix, v, root, calibration) for v in variants}
    decisions = [decide(matrix, v, runs, root) for v in variants]
    to_run = {d.variant for d in decisions if d.action != "skip"}
    ordered = [e for e in lpt_order(list(estimates.values())) if e.variant in to_run]
    specs = [train_spec(matrix, matrix.variants[e.variant], runs, root, e.seconds) for e in ordered]
    return TrainPlan(specs, decisions, lpt_schedule(ordered, slots))


@contextmanager
def runs_lock(runs: Path) -> Iterator[None]:
    """One `train` per runs dir. flock dies with its holder, so a stale lock is taken over for free."""
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise LockError(f"{runs}: another `mprtune train` (pid {holder}) is using this runs dir; wait for it, "
                        f"or use --runs-dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        handle.close()


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


def check_data(matrix: Matrix, variants: list[Variant], root: Path) -> None:
    missing = sorted({f"{root / matrix.data_dir / matrix.datasets[n].file}"
                      for v in variants for n in v.task.train
                      if not (root / matrix.data_dir / matrix.datasets[n].file).is_file()})
    if missing:
        tasks = sorted({v.task.name for v in variants})
        raise MprtuneError(f"training data missing: {', '.join(missing)}; run `mprtune prepare-data "
                           f"{' '.join(tasks)}` (or use --profile demo for the bundled samples)")


def train(matrix: Matrix, variants: list[Variant], runs: Path, root: Path, executor, retries: int,
          on_event: Callable[[Event], None], on_plan: Callable[[TrainPlan], None] = lambda plan: None,
          ) -> dict[str, JobStatus]:
    """Launch what needs launching; returns the final status of every job run in this call."""
    check_data(matrix, variants, root)
    ensure_base_models(matrix, root, sorted({v.model.name for v in variants}))
    with runs_lock(runs), stop_on_signals() as stop:
        plan = plan_training(matrix, variants, runs, root, executor.slots() or ["cluster"])
        on_plan(plan)
        for spec in plan.specs:  # a new `train` gives failed variants a fresh set of retries
            status = JobStatus.read(spec.paths.status)
            if status and status.state == FAILED:
                status.retries = 0
                status.write(spec.paths.status)

        def respec(spec: JobSpec) -> JobSpec:
            variant = matrix.variants[spec.name]
            return train_spec(matrix, variant, runs, root, spec.estimate_s)

        results = run_queue(plan.specs, executor, retries, respec, on_event, stop)
        if stop.is_set():
            raise KeyboardInterrupt
    return results


def cancel_jobs(matrix: Matrix, variants: list[Variant], runs: Path) -> list[str]:
    """Stop running jobs for good (no retry): scancel on Slurm, the job's process group locally."""
    cancelled = []
    for variant in variants:
        paths = JobPaths(runs / variant.name)
        status = JobStatus.read(paths.status)
        if status is None or derive_state(paths, "train") != RUNNING:
            continue
        status.state, status.finished_at, status.reason = CANCELLED, now(), "cancelled by `mprtune cancel`"
        status.write(paths.status)  # first, so the queue sees a cancellation, not a failure to retry
        if status.backend == "slurm":
            subprocess.run(["scancel", str(status.job_id)], check=False, capture_output=True)
        elif status.pid:
            try:
                os.killpg(status.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        cancelled.append(variant.name)
    return cancelled


def describe_spec(spec: JobSpec) -> dict[str, object]:
    return {"name": spec.name, "cwd": str(spec.cwd), "command": list(spec.command), "env": public_env(spec.env)}
