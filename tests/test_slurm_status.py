"""`status` over many Slurm jobs asks squeue once, not once per variant (no cluster needed: a recording squeue)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mprtune.config.matrix import load_matrix
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
