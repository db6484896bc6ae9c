"""Run jobs as local subprocesses, one per slot; a slot sees exactly its GPUs (none on CPU slots).

A job several slots wide ("0,1") sees all of them and runs under torchrun (the job environment
sets FORCE_TORCHRUN and NPROC_PER_NODE); each such job gets its own free MASTER_PORT, so two DDP
jobs on one machine never meet on torchrun's default port.

A job's identity is its process group leader's pid AND that process's start time (from /proc):
a status file left behind by a crash may name a pid the system has since given to an unrelated
process, and mprtune never signals, nor believes alive, a process it cannot prove is its own.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

from mprtune.launch.jobs import SLOT_SEP, JobSpec, JobStatus, job_logs, slot_parts

PR_SET_PDEATHSIG = 1
CPU_SLOT_PREFIX = "cpu"


def die_with_parent() -> None:
    """In the child: get SIGKILL when `mprtune train` dies, even by SIGKILL (Linux)."""
    os.setpgrp()  # own process group: cancel() kills the job's whole tree and nothing else
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if no such live process.

    With the pid it identifies one process for the life of the machine: pids are reused, start
    times of a reused pid differ.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if not fields or fields[0] == "Z":  # a zombie is dead for our purposes
        return None
    return fields[19]  # field 22 of /proc/PID/stat; fields[0] is field 3


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


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


def _exit_fd(pid: int) -> int | None:
    """A pidfd that becomes readable when `pid` exits (Linux 5.3+), or None where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class LocalJob:
    def __init__(self, spec: JobSpec, slot: str | None, process: subprocess.Popen) -> None:
        self.spec = spec
        self.slot = slot
        self.process = process
        self._identity = process_start_time(process.pid)
        self.exit_fd = _exit_fd(process.pid)

    @property
    def job_id(self) -> str:
        return str(self.process.pid)

    @property
    def identity(self) -> str | None:
        return self._identity

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None and self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
        return code

    def done(self) -> bool:
        return self.poll() is not None

    def cancel(self) -> None:
        kill_group(self.process)
        self.poll()  # closes exit_fd

    def logs(self, lines: int = 40) -> str:
        return job_logs(self.spec, lines)


class LocalExecutor:
    """Slots are GPU ids (`CUDA_VISIBLE_DEVICES=<id>`), or CPU slots `cpu0..` with no GPU visible."""

    name = "local"
    detach = False

    def __init__(self, gpus: list[int] | tuple[int, ...] = (), cpu_slots: int = 0) -> None:
        self._slots = [str(g) for g in gpus] if gpus else [f"{CPU_SLOT_PREFIX}{i}" for i in range(max(1, cpu_slots))]
        self._ports: dict[int, LocalJob] = {}

    def slots(self) -> list[str]:
        return list(self._slots)

    def devices(self, slot: str | None) -> str:
        # More than one visible GPU silently turns a job into DDP: a job sees exactly its slots' GPUs.
        parts = slot_parts(slot) or self._slots[:1]
        return SLOT_SEP.join(part for part in parts if not part.startswith(CPU_SLOT_PREFIX))

    def describe(self, spec: JobSpec) -> str | None:
        return None

    def check_fits(self, specs: list[JobSpec]) -> list[str]:
        return []  # widths and nodes are checked against the slots when planning (planner.check_widths)

    def _master_port(self) -> int:
        """A port free now and not handed to another of our running torchrun jobs."""
        self._ports = {port: job for port, job in self._ports.items() if not job.done()}
        for _ in range(20):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            if port not in self._ports:
                return port
        raise OSError("no free TCP port for torchrun's MASTER_PORT")

    def submit(self, spec: JobSpec, slot: str | None) -> LocalJob:
        slot = slot or SLOT_SEP.join(self._slots[: spec.width])
        env = dict(os.environ)
        env.update(spec.env)
        env["CUDA_VISIBLE_DEVICES"] = self.devices(slot)
        if slot.startswith(CPU_SLOT_PREFIX) and "OMP_NUM_THREADS" not in os.environ:
            # N CPU jobs each spawning one thread per core oversubscribe the machine (3-4x slower here);
            # a wide job's torchrun workers get one slot's share each.
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // len(self._slots)))
        port = self._master_port() if env.get("FORCE_TORCHRUN") == "1" else None
        if port is not None:
            env.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
        paths = spec.paths
        paths.folder.mkdir(parents=True, exist_ok=True)
        with paths.stdout.open("ab") as out, paths.stderr.open("ab") as err:
            torchrun = f", torchrun x{env.get('NPROC_PER_NODE', '?')} on port {port}" if port else ""
            banner = (
                f"\n===== mprtune: {spec.name} on slot {slot}{torchrun} at {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n"
            )
            out.write(banner.encode())
            err.write(banner.encode())
            out.flush()
            err.flush()
            process = subprocess.Popen(
                list(spec.command),
                cwd=spec.cwd,
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        job = LocalJob(spec, slot, process)
        if port is not None:
            self._ports[port] = job
        return job

    def wait(self, jobs: list[LocalJob], timeout_s: float) -> None:
        """Until one of `jobs` exits, at most timeout_s: the queue sees an exit at once, not one poll late."""
        fds = [job.exit_fd for job in jobs if job.exit_fd is not None]
        if len(fds) < len(jobs):  # no pidfd for some job: plain polling
            time.sleep(timeout_s)
        else:
            select.select(fds, [], [], timeout_s)

    def alive(self, status: JobStatus) -> bool:
        """True only if the recorded pid still runs, leads its own group, and started when we started it."""
        if not status.job_id or not status.job_id.isdigit() or not status.identity:
            return False
        pid = int(status.job_id)
        return process_start_time(pid) == status.identity and _pgid(pid) == pid

    def cancel(self, status: JobStatus) -> bool:
        if not self.alive(status):
            return False
        try:
            os.killpg(int(status.job_id or 0), signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True
