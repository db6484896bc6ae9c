"""Run jobs as local subprocesses, one per slot, each seeing exactly one GPU (or none on CPU slots)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from mprtune.jobs import JobSpec, job_logs

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL when `mprtune train` dies, even by SIGKILL (Linux)."""
    os.setpgrp()  # own process group: cancel() kills the job's whole tree and nothing else
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def kill_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the job's process group, wait for its leader, then SIGKILL whatever is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:  # grandchildren (torchrun workers) that outlived the leader
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class LocalJob:
    def __init__(self, spec: JobSpec, slot: str | None, process: subprocess.Popen) -> None:
        self.spec = spec
        self.slot = slot
        self.process = process

    @property
    def job_id(self) -> str:
        return str(self.process.pid)

    def poll(self) -> int | None:
        return self.process.poll()

    def done(self) -> bool:
        return self.poll() is not None

    def cancel(self) -> None:
        kill_group(self.process)

    def logs(self, lines: int = 40) -> str:
        return job_logs(self.spec, lines)


class LocalExecutor:
    """Slots are GPU ids (`CUDA_VISIBLE_DEVICES=<id>`), or CPU slots `cpu0..` with no GPU visible."""

    name = "local"

    def __init__(self, gpus: list[int] | tuple[int, ...] = (), cpu_slots: int = 0) -> None:
        self._slots = [str(g) for g in gpus] if gpus else [f"cpu{i}" for i in range(max(1, cpu_slots))]

    def slots(self) -> list[str]:
        return list(self._slots)

    def submit(self, spec: JobSpec, slot: str | None) -> LocalJob:
        slot = slot or self._slots[0]
        env = dict(os.environ)
        env.update(spec.env)
        # More than one visible GPU silently turns a job into DDP; none on CPU slots.
        env["CUDA_VISIBLE_DEVICES"] = "" if slot.startswith("cpu") else slot
        if slot.startswith("cpu") and "OMP_NUM_THREADS" not in os.environ:
            # N CPU jobs each spawning one thread per core oversubscribe the machine (3-4x slower here).
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // len(self._slots)))
        paths = spec.paths
        paths.folder.mkdir(parents=True, exist_ok=True)
        with paths.stdout.open("ab") as out, paths.stderr.open("ab") as err:
            banner = f"\n===== mprtune: {spec.name} on slot {slot} at {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n"
            out.write(banner.encode())
            err.write(banner.encode())
            out.flush()
            err.flush()
            process = subprocess.Popen(list(spec.command), cwd=spec.cwd, env=env, stdout=out, stderr=err,
                                       stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        return LocalJob(spec, slot, process)
