"""The Slurm backend: the generated sbatch script, and real jobs on the single-node cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mprtune.config.matrix import load_matrix
from mprtune.launch.backends.slurm import SlurmExecutor
from mprtune.launch.backends.slurm_jobcomp import read_jobcomp
from mprtune.launch.env import venv_bin
from mprtune.launch.train import train_spec
from mprtune.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "sbatch" / "llama32_3b_grammar_lora.sbatch"
A, B = "llama32_3b_grammar_lora", "llama31_8b_grammar_lora"


def test_the_sbatch_script_equals_the_expected_file() -> None:
    ws = Workspace(load_matrix(ROOT / "mprtune.yaml"), Path("/project"), Path("/project/runs"))
    spec = train_spec(ws, ws.matrix.variants[A])
    executor = SlurmExecutor(
        partition="gpu",
        time_limit="12:00:00",
        account="ml-team",
        sbatch_args=["--constraint=l40"],
        setup=["module load cuda/12.4"],
    )
    script = executor.script(spec).replace(str(venv_bin()), "<venv>/bin")
    if os.environ.get("MPRTUNE_UPDATE_GOLDEN"):
        GOLDEN.write_text(script)
    assert script == GOLDEN.read_text()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"time_limit": "3 hours"}, "--time: expected HH:MM:SS"),
        ({"partition": "gpu; rm -rf /"}, "--partition: unsafe value"),
        ({"sbatch_args": ["--mem=1G\n#SBATCH --x"]}, "--sbatch-arg: expected one"),
    ],
)
def test_unsafe_slurm_options_are_refused(kwargs: dict, message: str) -> None:
    from mprtune.errors import MprtuneError

    with pytest.raises(MprtuneError, match=message):
        SlurmExecutor(**kwargs)


# --- against the real single-node cluster (scripts/slurm-cluster.sh; fixture in conftest) --------


def mprtune(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mprtune", *args, "--profile", "tiny"],
        capture_output=True,
        text=True,
        env={**os.environ, **cluster.env, "MPRTUNE_PROJECT_DIR": os.environ["MPRTUNE_PROJECT_DIR"]},
    )


def banner_gpus(run: Path) -> set[str]:
    lines = [line for line in (run / "stdout.log").read_text().splitlines() if "as Slurm job" in line]
    return {line.split("CUDA_VISIBLE_DEVICES=")[1].split()[0].rstrip(",") for line in lines}


@pytest.mark.slurm
@pytest.mark.slow
def test_two_variants_train_concurrently_through_sbatch_and_a_rerun_skips_them(tiny_project, slurm_cluster) -> None:
    runs = tiny_project.root / "runs-tiny"
    result = mprtune(slurm_cluster, "train", "--backend", "slurm", A, B)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for name in (A, B):
        assert (runs / name / "adapter_model.safetensors").is_file()
        assert (runs / name / "job.sbatch").read_text().startswith("#!/bin/bash")
    gpus = banner_gpus(runs / A) | banner_gpus(runs / B)
    assert gpus == {"0", "1"}, "each job saw its own fake GPU"
    ids = [json.loads((runs / n / "mprtune-status.json").read_text())["job_id"] for n in (A, B)]
    records = read_jobcomp(slurm_cluster.jobcomp)
    a, b = records[ids[0]], records[ids[1]]
    assert a.state == b.state == "COMPLETED"
    assert a.start <= b.end and b.start <= a.end, "their Slurm running windows overlap"

    again = mprtune(slurm_cluster, "train", "--backend", "slurm", A, B)
    assert again.returncode == 0 and "0 trained" in again.stdout and "[started]" not in again.stdout
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "mprtune", "status", "--json", "--profile", "tiny"],
            capture_output=True,
            text=True,
            env={**os.environ, **slurm_cluster.env},
        ).stdout
    )
    assert {r["variant"]: r["state"] for r in status}[A] == "done"


@pytest.mark.slurm
@pytest.mark.slow
def test_a_cancelled_job_resumes_from_its_checkpoint_on_resubmission(tiny_project, slurm_cluster) -> None:
    tiny_project.write_matrix(tiny_project.matrix.read_text().replace("      max_steps: 12\n", "      max_steps: 60\n"))
    run = tiny_project.root / "runs-tiny" / A
    submitted = mprtune(slurm_cluster, "train", "--backend", "slurm", "--detach", A)
    assert submitted.returncode == 0 and "as Slurm job" in submitted.stdout, submitted.stderr[-2000:]
    deadline = time.monotonic() + 180
    while not (run / "checkpoint-4" / "trainer_state.json").is_file():
        assert time.monotonic() < deadline, (run / "stderr.log").read_text()[-2000:]
        time.sleep(0.2)
    cancelled = mprtune(slurm_cluster, "cancel", A)
    assert cancelled.returncode == 0 and f"Cancelled: {A}" in cancelled.stdout
    job_id = json.loads((run / "mprtune-status.json").read_text())["job_id"]
    deadline = time.monotonic() + 60
    while job_id not in read_jobcomp(slurm_cluster.jobcomp):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert read_jobcomp(slurm_cluster.jobcomp)[job_id].state == "CANCELLED"
    assert not (run / "adapter_model.safetensors").exists()
    # The cancel may land in the middle of a save: the newest checkpoint whose trainer state was
    # written is the one to resume, and a newer half-written one is named as skipped.
    steps = sorted(int(p.name.split("-")[1]) for p in run.glob("checkpoint-*"))
    saved = [n for n in steps if (run / f"checkpoint-{n}" / "trainer_state.json").is_file()]

    resumed = mprtune(slurm_cluster, "train", "--backend", "slurm", A)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resume from checkpoint-{saved[-1]}" in resumed.stdout
    if steps[-1] > saved[-1]:
        assert f"skipped checkpoint-{steps[-1]}" in resumed.stdout
    assert "Resuming training from" in (run / "stdout.log").read_text() + (run / "stderr.log").read_text()
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 60


@pytest.mark.slurm
@pytest.mark.slow
def test_a_failing_slurm_job_is_reported_failed_with_its_log_tail(tiny_project, slurm_cluster) -> None:
    text = tiny_project.matrix.read_text().replace(
        "\nprofiles:",
        "  - {name: broken_lora, model: llama31_8b, task: grammar, lora_target: no_such_module}\n\nprofiles:",
        1,
    )
    tiny_project.write_matrix(text)
    result = mprtune(slurm_cluster, "train", "--backend", "slurm", "--retries", "0", "broken_lora")
    assert result.returncode == 1
    assert "FAILED broken_lora: exit code 1" in result.stderr
    assert "no_such_module" in result.stderr, "the log tail is shown"
    status = json.loads((tiny_project.root / "runs-tiny/broken_lora/mprtune-status.json").read_text())
    assert status["state"] == "failed" and status["backend"] == "slurm"


@pytest.mark.slurm
@pytest.mark.slow
def test_a_requeued_job_resumes_from_its_checkpoint_by_itself(tiny_project, slurm_cluster) -> None:
    tiny_project.write_matrix(tiny_project.matrix.read_text().replace("      max_steps: 12\n", "      max_steps: 60\n"))
    run = tiny_project.root / "runs-tiny" / A
    train = subprocess.Popen(
        [sys.executable, "-m", "mprtune", "train", "--backend", "slurm", A, "--profile", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **slurm_cluster.env},
    )
    deadline = time.monotonic() + 180
    while not (run / "checkpoint-4" / "trainer_state.json").is_file():
        assert time.monotonic() < deadline and train.poll() is None, (run / "stderr.log").read_text()[-2000:]
        time.sleep(0.2)
    job_id = json.loads((run / "mprtune-status.json").read_text())["job_id"]
    slurm_cluster.run("scontrol", "requeue", job_id)  # what preemption with requeue does
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # skip Slurm's ~120 s requeue delay once the job is pending again
        state = slurm_cluster.run("squeue", "-h", "-o", "%T", "-j", job_id, check=False).stdout.strip()
        if state == "PENDING":
            slurm_cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now", check=False)
        elif state == "RUNNING" and (run / "stdout.log").read_text().count("as Slurm job") == 2:
            break
        time.sleep(0.5)
    out, err = train.communicate(timeout=300)
    assert train.returncode == 0, out[-1000:] + err[-2000:]
    banners = [line for line in (run / "stdout.log").read_text().splitlines() if "as Slurm job" in line]
    assert [b.split("(restart ")[1].rstrip(") =") for b in banners] == ["0", "1"], banners
    assert "Resuming training from" in (run / "stdout.log").read_text() + (run / "stderr.log").read_text()
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 60
    assert (run / "adapter_model.safetensors").is_file()
