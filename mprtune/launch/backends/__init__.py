"""The backends that run jobs, and the one place that knows their names.

`from_options` builds the executor a command asked for; `for_status` gives the backend that can
judge (or stop) a job recorded in a status file by an earlier `mprtune` process.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import Any

from mprtune.config.matrix import Matrix
from mprtune.errors import MprtuneError, show
from mprtune.launch.jobs import Executor, JobStatus

BACKENDS = ("local", "slurm")


def parse_gpus(text: str, where: str = "--gpus") -> list[int]:
    """`0,1` -> [0, 1]; negative, repeated, empty or non-integer ids are errors, like hardware.gpus."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise MprtuneError(f"{where}: expected comma-separated GPU ids like 0,1, got {show(text)}")
    if not all(part.isdigit() for part in parts):
        raise MprtuneError(f"{where}: GPU ids are integers >= 0, got {show(text)}")
    ids = [int(part) for part in parts]
    if len(set(ids)) != len(ids):
        raise MprtuneError(f"{where}: GPU id listed twice in {show(text)}; each GPU is one slot")
    return ids


def visible_gpu_count() -> int | None:
    """How many GPUs this machine has, from nvidia-smi; None when that cannot be told (no driver tool)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return 0
    return len([line for line in proc.stdout.splitlines() if line.strip()])


def check_gpus_exist(gpus: list[int], where: str) -> None:
    """A GPU id this machine does not have must not silently become a CPU run."""
    if not gpus:
        return
    count = visible_gpu_count()
    if count is None:
        raise MprtuneError(
            f"{where}: GPU ids {gpus} requested but nvidia-smi is not available on this machine; "
            f"use --slots N for CPU jobs (or --profile demo)"
        )
    missing = [g for g in gpus if g >= count]
    if missing:
        has = f"{count} GPU(s) (ids 0..{count - 1})" if count else "no GPU (nvidia-smi lists none)"
        raise MprtuneError(
            f"{where}: this machine has {has}; no GPU {', '.join(map(str, missing))}; use --slots N for CPU jobs"
        )


def device_warnings(matrix: Matrix, gpus: str | None, slots: int | None, backend: str) -> list[str]:
    """GPUs a plan assumes but this machine lacks: a warning for `plan` and `--dry-run`, an error for `train`."""
    if backend != "local" or slots:
        return []
    ids = parse_gpus(gpus) if gpus is not None else list(matrix.gpus)
    try:
        check_gpus_exist(ids, "--gpus" if gpus is not None else "hardware.gpus")
    except MprtuneError as error:
        return [f"{error} (the plan assumes them; `train` will refuse)"]
    return []


def from_options(
    matrix: Matrix,
    backend: str = "local",
    gpus: str | None = None,
    slots: int | None = None,
    check_devices: bool = True,
    **slurm: Any,
) -> Executor:
    """The executor for a command's options, falling back to the matrix's hardware/slurm sections."""
    if backend == "slurm":
        from mprtune.launch.backends.slurm import SlurmExecutor

        defaults = dict(matrix.slurm)
        options: dict[str, Any] = {
            "partition": slurm.get("partition") or defaults.get("partition"),
            "time_limit": slurm.get("time_limit") or defaults.get("time"),
            "account": slurm.get("account") or defaults.get("account"),
            "sbatch_args": [*defaults.get("sbatch_args", []), *slurm.get("sbatch_args", [])],
            "setup": defaults.get("setup", []),
            "detach": slurm.get("detach", False),
        }
        for key in ("cpus_per_task", "mem"):
            if key in defaults:
                options[key] = defaults[key]
        return SlurmExecutor(**options)
    if backend != "local":
        raise MprtuneError(f"--backend: expected one of {', '.join(BACKENDS)}, got {show(backend)}")
    from mprtune.launch.backends.local import LocalExecutor

    if gpus is not None and slots:
        raise MprtuneError("--gpus and --slots are exclusive: GPU slots or CPU slots")
    if gpus is not None:
        ids = parse_gpus(gpus)
        if check_devices:
            check_gpus_exist(ids, "--gpus")
        return LocalExecutor(gpus=ids)
    if slots:
        return LocalExecutor(cpu_slots=slots)
    if check_devices:
        check_gpus_exist(list(matrix.gpus), f"{matrix.source.name}: hardware.gpus")
    return LocalExecutor(gpus=list(matrix.gpus), cpu_slots=matrix.slots)


def for_status(status: JobStatus) -> Executor:
    """A backend able to tell whether the job in `status` is alive, and to cancel it.

    One instance per backend for the whole process: `status` over many Slurm variants asks squeue
    once per poll interval, not once per variant.
    """
    return _judge("slurm" if status.backend == "slurm" else "local")


@functools.cache
def _judge(backend: str) -> Executor:
    if backend == "slurm":
        from mprtune.launch.backends.slurm import SlurmExecutor

        return SlurmExecutor()
    from mprtune.launch.backends.local import LocalExecutor

    return LocalExecutor()
