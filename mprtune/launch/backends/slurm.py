"""The Slurm backend: one sbatch script per job, tracked with squeue and the job-completion record.

The cluster does the queueing (`slots()` is None): every job is submitted at once with
`--gres=gpu:<width>` (one GPU for most jobs, so Slurm sets CUDA_VISIBLE_DEVICES to exactly one;
a wide job gets `width` GPUs, runs torchrun, and `cpus_per_task` and `mem`, which are per GPU,
scaled by its width). No accounting database is
needed: a job that left squeue is looked up in the jobcomp file (JobCompType=jobcomp/filetxt), or
with `sacct` where accounting exists.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from mprtune.config.render import render_template
from mprtune.errors import MprtuneError, show
from mprtune.io import atomic_write
from mprtune.launch.backends import slurm_nodes
from mprtune.launch.backends.slurm_jobcomp import read_jobcomp
from mprtune.launch.jobs import JobSpec, JobStatus, job_logs

ACTIVE_STATES = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SUSPENDED",
    "STOPPED",
    "SIGNALING",
    "STAGE_OUT",
    "PREEMPTED",
}
SIGNAL_STATES = {
    "CANCELLED": 15,
    "TIMEOUT": 9,
    "NODE_FAIL": 9,
    "PREEMPTED": 9,
    "OUT_OF_MEMORY": 9,
    "DEADLINE": 9,
    "BOOT_FAIL": 9,
}
TIME_RE = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
MEM_RE = re.compile(r"^(\d+)([KMGT]?)B?$", re.I)


def scaled_mem(mem: str, width: int) -> str:
    """`64G` for one GPU -> `128G` for two; a value sbatch reads some other way is passed on as it is."""
    match = MEM_RE.match(mem.strip())
    if width == 1 or not match:
        return mem
    return f"{int(match.group(1)) * width}{match.group(2)}"


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise MprtuneError(
            f"`{args[0]}` not found: run on a Slurm login node, or put the Slurm client on PATH"
        ) from None
    if check and proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise MprtuneError(f"`{' '.join(args[:2])}` failed: {message[-1] if message else proc.returncode}")
    return proc


def squeue_states(job_ids: list[str] | None = None) -> dict[str, tuple[str, str]] | None:
    """{job id: (state, job name)} for the given jobs, or for all of this user's jobs (one call).

    None when squeue itself failed (slurmctld busy or restarting): "no answer" must never read as
    "the job is gone", or a running job would be judged dead and launched a second time.
    """
    # --states=all: a job stays listed through requeues and for MinJobAge after it ends, so it never
    # "disappears" between its kill and its next start.
    args = ["squeue", "--noheader", "--states=all", "--format=%i|%T|%j"]
    args += ["--jobs", ",".join(job_ids)] if job_ids else ["--me"]
    proc = _run(args, check=False)
    if proc.returncode != 0:
        return None
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def job_name(spec_name: str) -> str:
    return re.sub(r"[^\w.-]", "_", spec_name)


def jobcomp_path() -> Path | None:
    proc = _run(["scontrol", "show", "config"], check=False)
    match = re.search(r"^JobCompLoc\s*=\s*(\S+)", proc.stdout, re.M)
    return Path(match.group(1)) if match and match.group(1).startswith("/") else None


def finished_exit_code(job_id: str, jobcomp: Path | None) -> int | None:
    """The exit code of a job that left the queue (negative: killed by that signal); None if unknown."""
    record = read_jobcomp(jobcomp).get(job_id) if jobcomp and jobcomp.is_file() else None
    if record is None:
        proc = _run(["sacct", "--noheader", "--parsable2", "--format=State,ExitCode", "-X", "-j", job_id], check=False)
        line = proc.stdout.strip().splitlines()[:1] if proc.returncode == 0 else []
        if not line:
            return None
        state, exit_code = line[0].split("|")
        state = state.split()[0]
        code, sig = (int(x) for x in exit_code.split(":"))
    else:
        state, code, sig = record.state, record.exit_code or 0, record.signal or 0
    if state == "COMPLETED":
        return 0
    if state in ACTIVE_STATES:
        return None
    if sig:
        return -sig
    if state in SIGNAL_STATES and code == 0:
        return -SIGNAL_STATES[state]
    return code or 1


class SlurmJob:
    def __init__(self, spec: JobSpec, job_id: str, executor: SlurmExecutor) -> None:
        self.spec = spec
        self.slot: str | None = None
        self._job_id = job_id
        self._executor = executor
        self._code: int | None = None
        self._gone_since: float | None = None

    @property
    def job_id(self) -> str:
        return self._job_id

    @property
    def identity(self) -> str:
        return job_name(self.spec.name)

    def poll(self) -> int | None:
        if self._code is None:
            self._code = self._executor.exit_code(self._job_id)
        if self._code is None and self._executor.queued(self._job_id):
            self._gone_since = None  # seen again (a requeue, a listing that lagged): the clock restarts
        elif self._code is None:
            # Left the queue with no completion record (no jobcomp, no accounting): judge by its files
            # once it has stayed away for a while, never on one missing listing.
            self._gone_since = self._gone_since or time.monotonic()
            if time.monotonic() - self._gone_since > 15:
                self._code = 0 if self.spec.paths.is_complete(self.spec.kind) else 1
        return self._code

    def done(self) -> bool:
        return self.poll() is not None

    def cancel(self) -> None:
        _run(["scancel", self._job_id], check=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = squeue_states([self._job_id])
            if states is not None and _state_of(states, self._job_id) not in ACTIVE_STATES:
                break
            time.sleep(0.5)

    def logs(self, lines: int = 40) -> str:
        if self.spec.nodes > 1:
            return slurm_nodes.failure_logs(self.spec, lines)
        return job_logs(self.spec, lines)


def _state_of(states: dict[str, tuple[str, str]], job_id: str) -> str | None:
    return states[job_id][0] if job_id in states else None


class SlurmExecutor:
    name = "slurm"
    poll_interval = 1.0

    def __init__(
        self,
        partition: str | None = None,
        time_limit: str | None = None,
        account: str | None = None,
        sbatch_args: list[str] | None = None,
        setup: list[str] | None = None,
        cpus_per_task: int = 4,
        mem: str = "64G",
        detach: bool = False,
        **_: object,
    ) -> None:
        if time_limit and not TIME_RE.match(time_limit):
            raise MprtuneError(f"--time: expected HH:MM:SS or D-HH:MM:SS, got {show(time_limit)}")
        for value, flag in ((partition, "--partition"), (account, "--account")):
            if value is not None and not re.fullmatch(r"[\w.,-]+", value):
                raise MprtuneError(f"{flag}: unsafe value {show(value)}")
        for arg in sbatch_args or []:
            if "\n" in arg or not arg.startswith("--"):
                raise MprtuneError(f"--sbatch-arg: expected one `--option[=value]`, got {show(arg)}")
        self.partition, self.time_limit, self.account = partition, time_limit or "24:00:00", account
        self.sbatch_args, self.setup = list(sbatch_args or []), list(setup or [])
        self.cpus_per_task, self.mem, self.detach = cpus_per_task, mem, detach
        self._states: dict[str, tuple[str, str]] = {}
        self._states_at = 0.0
        self._jobs: list[str] = []
        self._jobcomp: Path | None = None

    def slots(self) -> None:
        return None

    def devices(self, slot: str | None) -> str:
        return "(set by Slurm)"

    def describe(self, spec: JobSpec) -> str:
        return self.script(spec)

    def check_fits(self, specs: list[JobSpec]) -> list[str]:
        return slurm_nodes.fit_problems(specs, self.partition)

    def script(self, spec: JobSpec) -> str:
        # The resume point is decided when the job (re)starts, once, in the batch script: launch/resume.py
        cpus = self.cpus_per_task * spec.width
        command = slurm_nodes.step_command(spec, cpus) if spec.nodes > 1 else list(spec.command)
        env = sorted((k, shlex.quote(v)) for k, v in spec.env.items() if k != "PATH")
        env.append(
            ("PATH", f'{shlex.quote(spec.env["PATH"].split(os.pathsep)[0])}:"$PATH"')
            if "PATH" in spec.env
            else ("PATH", '"$PATH"')
        )
        return render_template(
            "sbatch.sh.j2",
            job=spec.name,
            job_name=job_name(spec.name),
            gpus=spec.width,
            nodes=spec.nodes,
            tokenize=shlex.join(slurm_nodes.tokenize_command(spec)),
            exit_records=shlex.quote(str(spec.folder)) + "/node-*.exit",
            torchrun=spec.env.get("FORCE_TORCHRUN") == "1",
            cpus_per_task=cpus,
            mem=scaled_mem(self.mem, spec.width),
            time_limit=self.time_limit,
            partition=self.partition,
            account=self.account,
            stdout=shlex.quote(str(spec.paths.stdout)),
            stderr=shlex.quote(str(spec.paths.stderr)),
            sbatch_args=self.sbatch_args,
            setup=self.setup,
            cwd=shlex.quote(str(spec.cwd)),
            env=env,
            command=shlex.join(command),
        )

    def submit(self, spec: JobSpec, slot: str | None = None) -> SlurmJob:
        path = spec.folder / "job.sbatch"
        atomic_write(path, self.script(spec))
        proc = _run(["sbatch", "--parsable", str(path)])
        job_id = proc.stdout.strip().split(";")[0]
        self._jobs.append(job_id)
        self._states_at = 0.0
        return SlurmJob(spec, job_id, self)

    def _refresh(self, everyone: bool = False) -> bool:
        """Renew the view of the queue; False (and the previous view kept) when squeue did not answer."""
        states = squeue_states(None if everyone or not self._jobs else self._jobs)
        self._states_at = time.monotonic()
        if states is None:
            return False
        self._states = states
        return True

    def state(self, job_id: str) -> str | None:
        """The job's squeue state; the view refreshes at most once per poll_interval."""
        if time.monotonic() - self._states_at > self.poll_interval:
            self._refresh()
        return _state_of(self._states, job_id)

    def queued(self, job_id: str) -> bool:
        return self.state(job_id) in ACTIVE_STATES

    def exit_code(self, job_id: str) -> int | None:
        """None while Slurm still runs or will rerun the job (requeued: pending again)."""
        state = self.state(job_id)
        if state in ACTIVE_STATES:
            return None
        if state == "COMPLETED":
            return 0
        if self._jobcomp is None:
            self._jobcomp = jobcomp_path() or Path("/nonexistent")
        code = finished_exit_code(job_id, self._jobcomp)
        if code is None and state in SIGNAL_STATES:
            return -SIGNAL_STATES[state]
        return code

    def alive(self, status: JobStatus) -> bool:
        """Queued or running under the job name mprtune gave it (one squeue call per poll_interval)."""
        if not status.job_id:
            return False
        if status.job_id not in self._states or time.monotonic() - self._states_at > self.poll_interval:
            if not self._refresh(everyone=True) and status.job_id not in self._states:
                raise MprtuneError(
                    f"squeue did not answer, so whether Slurm job {status.job_id} ({status.name}) still runs "
                    "is unknown: retry when slurmctld responds (`squeue --me` works)"
                )
        state, name = self._states.get(status.job_id, (None, None))
        return state in ACTIVE_STATES and (status.identity is None or name == status.identity)

    def cancel(self, status: JobStatus) -> bool:
        if not self.alive(status):
            return False
        _run(["scancel", str(status.job_id)], check=False)
        return True
