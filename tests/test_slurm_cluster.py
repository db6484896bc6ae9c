"""mprtune's Slurm pieces against a real single-node cluster (scripts/slurm-cluster.sh): the jobcomp
parser on the records Slurm really writes, and the cluster script's isolation between checkouts.
(What Slurm itself does with GPUs and queues is Slurm's business, not tested here.)

Skipped when the cluster cannot be started (see tests/slurm_cluster.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from mprtune.launch.backends.slurm_jobcomp import JobCompRecord, read_jobcomp

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # tests/ is not a package: make the helper importable
    sys.path.insert(0, _TESTS_DIR)

from slurm_cluster import SlurmCluster, clusters  # noqa: E402

pytestmark = pytest.mark.slurm

# What to poll squeue with: id|name|state|reason, one line per job; with
# --states=all finished jobs stay listed for MinJobAge (600 s). Add --array to
# get one line per array task (ARRAYID_TASKID) instead of "ID_[0-3%1]".
SQUEUE_FORMAT = "%i|%j|%T|%r"
T = TypeVar("T")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``fn`` every 0.2 s until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def squeue(cluster: SlurmCluster, job_ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """``{job id: (name, state, reason)}`` of the given jobs, finished ones too."""
    proc = cluster.run(
        "squeue",
        "--noheader",
        "--states=all",
        f"--format={SQUEUE_FORMAT}",
        f"--jobs={','.join(job_ids)}",
        check=False,
    )
    out: dict[str, tuple[str, str, str]] = {}
    for line in proc.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 4:
            out[parts[0]] = (parts[1], parts[2], parts[3])
    return out


def state_of(cluster: SlurmCluster, job_id: str) -> str | None:
    row = squeue(cluster, [job_id]).get(job_id)
    return row[1] if row else None


def jobcomp_record(cluster: SlurmCluster, job_id: str) -> JobCompRecord | None:
    return read_jobcomp(cluster.jobcomp).get(job_id)


class Jobs:
    """Submits jobs and cancels whatever is left of them at teardown."""

    def __init__(self, cluster: SlurmCluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.ids: list[str] = []

    def sbatch(self, name: str, script: str, *extra: str) -> str:
        proc = self.cluster.run(
            "sbatch",
            "--parsable",
            f"--job-name={name}",
            f"--chdir={self.workdir}",
            f"--output={self.workdir / (name + '.out')}",
            f"--error={self.workdir / (name + '.err')}",
            *extra,
            f"--wrap={script}",
        )
        job_id = proc.stdout.strip().split(";")[0]
        assert job_id.isdigit(), proc.stdout + proc.stderr
        self.ids.append(job_id)
        return job_id

    def cleanup(self) -> None:
        if not self.ids:
            return
        self.cluster.run("scancel", *self.ids, check=False)

        def gone() -> bool:
            active = [
                row
                for row in squeue(self.cluster, self.ids).values()
                if row[1] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")
            ]
            return not active

        wait_for(f"jobs {self.ids} to leave the queue", gone, timeout=60)


@pytest.fixture
def jobs(slurm_cluster: SlurmCluster, tmp_path: Path) -> Iterator[Jobs]:  # noqa: F811
    j = Jobs(slurm_cluster, tmp_path)
    try:
        yield j
    finally:
        j.cleanup()


def test_scancel_of_sleeping_job_is_recorded_cancelled(
    slurm_cluster: SlurmCluster,  # noqa: F811
    jobs: Jobs,
) -> None:
    job = jobs.sbatch("sleeper", "sleep 300")
    wait_for("sleeper to run", lambda: state_of(slurm_cluster, job) == "RUNNING")
    slurm_cluster.run("scancel", job)
    rec = wait_for("jobcomp record of sleeper", lambda: jobcomp_record(slurm_cluster, job))
    assert rec.state == "CANCELLED"
    assert rec.name == "sleeper"
    # The jobcomp line is written when the job ends; squeue may still say
    # COMPLETING for a moment before it says CANCELLED.
    wait_for("squeue to say CANCELLED", lambda: state_of(slurm_cluster, job) == "CANCELLED")
    err = (jobs.workdir / "sleeper.err").read_text()
    assert f"JOB {job} ON" in err and "CANCELLED" in err


def test_exit_3_is_recorded_failed_with_exit_code_3(
    slurm_cluster: SlurmCluster,  # noqa: F811
    jobs: Jobs,
) -> None:
    job = jobs.sbatch("exit3", "echo to-stdout; echo to-stderr >&2; exit 3")
    rec = wait_for("jobcomp record of exit3", lambda: jobcomp_record(slurm_cluster, job))
    assert (rec.state, rec.exit_code, rec.signal) == ("FAILED", 3, 0)
    assert rec.start is not None and rec.end is not None
    assert (jobs.workdir / "exit3.out").read_text() == "to-stdout\n"
    assert (jobs.workdir / "exit3.err").read_text() == "to-stderr\n"
    row = squeue(slurm_cluster, [job])[job]
    assert row[1:] == ("FAILED", "NonZeroExitCode")


def ports(conf: Path) -> tuple[str, str]:
    values = dict(line.split("=", 1) for line in conf.read_text().splitlines() if "Port=" in line)
    return values["SlurmctldPort"], values["SlurmdPort"]


def test_a_second_checkout_gets_its_own_cluster_on_other_ports(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    # What a second checkout testing at the same time does: start its own cluster in its own
    # temporary folder, from what is installed, while ours keeps running.
    # Ours is up, so Slurm is installed and we are root: failing to start must fail, not skip.
    environ = {**{k: v for k, v in os.environ.items() if k != "MPRTUNE_SLURM_CONF"}, "MPRTUNE_SLURM_REQUIRED": "1"}
    second_run = clusters(environ)
    other = next(second_run)
    try:
        assert other.base_dir.parent == Path(tempfile.gettempdir()).resolve()
        assert set(ports(other.conf)).isdisjoint(ports(slurm_cluster.conf))
        job = other.run(
            "sbatch",
            "--parsable",
            "--job-name=second-checkout",
            f"--chdir={tmp_path}",
            "--output=/dev/null",
            "--wrap=true",
        )
        job_id = job.stdout.strip().split(";")[0]
        rec = wait_for("the job on the second cluster", lambda: read_jobcomp(other.jobcomp).get(job_id))
        assert (rec.name, rec.state) == ("second-checkout", "COMPLETED")
        assert all(r.name != "second-checkout" for r in read_jobcomp(slurm_cluster.jobcomp).values())
        assert slurm_cluster.run("sinfo", "--noheader").returncode == 0, "ours still answers"
    finally:
        second_run.close()  # stops the second cluster and removes its folder
    assert not other.base_dir.exists()
    assert slurm_cluster.run("sinfo", "--noheader").returncode == 0
