"""How mprtune reads squeue, with no cluster: a recording or scripted squeue on PATH.

`status` over many Slurm jobs asks squeue once; a listing that lags or a squeue that does not answer
never makes a running job look finished (it would be launched a second time)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from mprtune.config.matrix import load_matrix
from mprtune.errors import MprtuneError
from mprtune.launch.backends import slurm
from mprtune.launch.jobs import RUNNING, JobStatus
from mprtune.launch.status import status_rows
from mprtune.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def test_status_of_ten_slurm_jobs_makes_one_squeue_call(tmp_path: Path, monkeypatch) -> None:
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    # Every job is listed RUNNING under the name mprtune gave it.
    squeue.write_text(
        f'#!/bin/sh\necho call >> {calls}\nfor i in 1 2 3 4 5 6 7 8 9 10; do echo "$i|RUNNING|v$i"; done\n'
    )
    squeue.chmod(squeue.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ws = Workspace(load_matrix(ROOT / "mprtune.yaml"), ROOT, tmp_path / "runs")
    for index, name in enumerate(ws.matrix.variants, 1):
        folder = ws.run_dir(name)
        folder.mkdir(parents=True)
        JobStatus(name, "train", state=RUNNING, backend="slurm", job_id=str(index), identity=f"v{index}").write(
            folder / "mprtune-status.json"
        )
    rows = status_rows(ws)
    assert [r.state for r in rows] == [RUNNING] * 10
    assert calls.read_text().count("call") == 1


class Clock:
    """slurm.py's view of time, advanced by the test (the 15 s "gone" grace without waiting 15 s)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def scripted_slurm(tmp_path: Path, monkeypatch) -> tuple[Path, Clock]:
    """A squeue that answers what the test writes to `mode` (a state, MISSING or FAIL); no scontrol
    answer and no accounting, as on a cluster without jobcomp or sacct."""
    mode = tmp_path / "mode"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "squeue": f"""#!/bin/sh
case "$(cat {mode})" in
  FAIL) echo "squeue: error: slurm_load_jobs error: Socket timed out on send/recv operation" >&2; exit 1;;
  MISSING) exit 0;;
  *) echo "7|$(cat {mode})|job_a";;
esac
""",
        "scontrol": "#!/bin/sh\nexit 0\n",
        "sacct": "#!/bin/sh\necho 'sacct: error: accounting storage is disabled' >&2; exit 1\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    clock = Clock()
    monkeypatch.setattr(slurm, "time", clock)
    return mode, clock


def unfinished_job(executor: slurm.SlurmExecutor) -> slurm.SlurmJob:
    spec = SimpleNamespace(name="job_a", kind="train", paths=SimpleNamespace(is_complete=lambda kind: False))
    return slurm.SlurmJob(spec, "7", executor)  # type: ignore[arg-type]


def test_a_running_job_is_not_judged_gone_by_listings_that_lag_or_fail(scripted_slurm) -> None:
    mode, clock = scripted_slurm
    job = unfinished_job(slurm.SlurmExecutor())
    # Just submitted, not listed yet; then running for a while; then one listing misses it (a requeue
    # in flight); then squeue does not answer for 30 s (slurmctld busy). None of it is an exit.
    for state, seconds in [("MISSING", 5), ("RUNNING", 20), ("MISSING", 5), ("RUNNING", 5), ("FAIL", 30)]:
        mode.write_text(state)
        for _ in range(int(seconds)):
            assert job.poll() is None, f"judged finished while squeue said {state}"
            clock.now += 1
    mode.write_text("MISSING")  # now really gone, with no record and incomplete files: a failure
    for _ in range(17):
        clock.now += 1
        code = job.poll()
    assert code == 1


def test_liveness_is_an_error_not_a_guess_when_squeue_does_not_answer(scripted_slurm) -> None:
    mode, _ = scripted_slurm
    status = JobStatus("job_a", "train", state=RUNNING, backend="slurm", job_id="7", identity="job_a")
    mode.write_text("FAIL")
    with pytest.raises(MprtuneError, match="squeue did not answer.*Slurm job 7"):
        slurm.SlurmExecutor().alive(status)
    mode.write_text("RUNNING")
    assert slurm.SlurmExecutor().alive(status)
