"""Variants that need k GPUs: the packing policy, the queue on fake GPU slots, torchrun for real, Slurm."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.config.matrix import load_matrix
from mprtune.launch.backends.local import LocalExecutor
from mprtune.launch.backends.slurm import SlurmExecutor, scaled_mem
from mprtune.launch.env import venv_bin
from mprtune.launch.jobs import JobSpec, JobStatus
from mprtune.launch.planner import Estimate, lower_bound, lpt_schedule
from mprtune.launch.policy import Busy, Waiting, pick, simulate
from mprtune.launch.queue import run_queue
from mprtune.launch.train import train_spec
from mprtune.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "sbatch" / "llama31_8b_grammar_2gpu.sbatch"
WIDE = "llama31_8b_grammar_2gpu"


def busy_slots_at(runs: list[tuple[float, float, list[str]]], instant: float) -> list[str]:
    return [slot for start, end, slots in runs if start <= instant < end for slot in slots]


def check_capacity(runs: list[tuple[float, float, list[str]]], capacity: int) -> None:
    """At every start (the only instants occupancy grows), no slot is held twice and no more than `capacity`."""
    for start, _, _ in runs:
        held = busy_slots_at(runs, start)
        assert len(held) == len(set(held)) <= capacity, (start, held)


# --- the policy, simulated ------------------------------------------------------------------------


def test_simulated_schedules_respect_capacity_and_the_list_scheduling_bound() -> None:
    rng = random.Random(0)
    for _ in range(1500):
        slots = [str(i) for i in range(rng.choice([2, 3, 4, 8]))]
        jobs = [
            Estimate(f"v{i}", rng.uniform(1, 100), 0, "matrix", rng.choice([1, 1, 1, 2, len(slots)]))
            for i in range(rng.randint(1, 12))
        ]
        schedule = lpt_schedule(jobs, slots)
        runs = [(p.start_s, p.end_s, p.slot.split(",")) for p in schedule.placements]
        assert sorted(p.variant for p in schedule.placements) == sorted(j.variant for j in jobs)
        assert all(
            len(slots_) == j.width
            for j in jobs
            for p in schedule.placements
            if p.variant == j.variant
            for slots_ in [p.slot.split(",")]
        )
        check_capacity(runs, len(slots))
        # Garey-Graham style bound for rigid jobs: never worse than twice max(area / slots, longest).
        assert schedule.lower_bound_s - 1e-9 <= schedule.makespan_s <= 2 * schedule.lower_bound_s + 1e-9


def test_a_waiting_wide_job_is_not_starved_by_one_gpu_jobs() -> None:
    # One long job holds a GPU; the 4-wide job waits for it. Short jobs fill the other three GPUs
    # only while they end before it frees: the wide job starts the moment the long one ends.
    jobs = [Waiting("long", 1, 10.0), Waiting("wide", 4, 5.0), *(Waiting(f"short{i}", 1, 3.0) for i in range(20))]
    runs = {r.name: r for r in simulate(jobs, ["0", "1", "2", "3"])}
    assert runs["wide"].start_s == 10.0
    before = [r for r in runs.values() if r.name.startswith("short") and r.end_s <= 10.0]
    assert len(before) == 9, "three rounds of three short jobs ran beside the long one"
    assert all(r.start_s >= 15.0 for r in runs.values() if r.name.startswith("short") and r not in before)


def test_jobs_without_estimates_never_jump_a_reservation() -> None:
    waiting = [Waiting("wide", 2, 0.0), Waiting("other", 1, 0.0)]
    assert pick(waiting, ["1"], [Busy(("0",), 0.0, 0.0)], now=5.0) == [], "the free GPU is kept for the wide job"
    assert pick(waiting, ["1", "2"], [Busy(("0",), 0.0, 0.0)], now=5.0) == [(0, ("1", "2"))]


def test_beside_an_overdue_job_only_jobs_shorter_than_its_overrun_so_far_start() -> None:
    running = [Busy(("0",), 0.0, 10.0)]  # estimated 10 s, still running at 12 s: expected to end at 14 s
    waiting = [Waiting("wide", 2, 5.0), Waiting("short", 1, 1.5), Waiting("long", 1, 3.0)]
    assert pick(waiting, ["1"], running, now=12.0) == [(1, ("1",))]
    assert pick(waiting, ["1"], running, now=10.5) == [], "overrun 0.5 s so far: 1.5 s is too long"


# --- the real queue on fake GPU slots ---------------------------------------------------------------


def sleeper(tmp_path: Path, name: str, seconds: float, width: int = 1) -> JobSpec:
    """A job that sleeps, records what it saw (devices, torchrun settings), then writes a train job's outputs."""
    script = (
        "import json,os,pathlib,time\ntime.sleep(float(os.environ['SLEEP']))\np=pathlib.Path('.')\n"
        "(p/'seen.json').write_text(json.dumps({k: os.environ.get(k) for k in "
        "('CUDA_VISIBLE_DEVICES','NPROC_PER_NODE','MASTER_PORT')}))\n"
        "(p/'train_results.json').write_text('{}'); (p/'adapter_model.safetensors').write_text('x')\n"
    )
    env = {"SLEEP": str(seconds)}
    if width > 1:  # what job_env sets for a wide variant
        env.update(FORCE_TORCHRUN="1", NPROC_PER_NODE=str(width))
    folder = tmp_path / name
    folder.mkdir()
    return JobSpec(
        name, "train", folder, (sys.executable, "-S", "-c", script), env, folder, "x: 1\n", seconds, width=width
    )


def test_the_queue_packs_mixed_widths_within_capacity_and_the_bound(tmp_path: Path) -> None:
    durations = {
        "wide_a": (2, 2.0),
        "wide_b": (2, 1.6),
        "wide_c": (3, 1.2),
        "one_a": (1, 1.4),
        "one_b": (1, 1.0),
        "one_c": (1, 0.8),
        "one_d": (1, 0.8),
        "one_e": (1, 0.6),
        "one_f": (1, 0.6),
    }
    estimates = [Estimate(name, seconds, 0, "matrix", width) for name, (width, seconds) in durations.items()]
    plan = lpt_schedule(estimates, ["0", "1", "2", "3"])
    specs = [
        sleeper(tmp_path, p.variant, durations[p.variant][1], durations[p.variant][0])
        for p in sorted(plan.placements, key=lambda p: (-durations[p.variant][1], p.variant))
    ]
    final = run_queue(specs, LocalExecutor(gpus=[0, 1, 2, 3]))
    assert {s.state for s in final.values()} == {"done"}

    runs = []
    for name, status in final.items():
        ((start, end),) = JobStatus.read(tmp_path / name / "mprtune-status.json").windows
        slots = status.slot.split(",")
        seen = json.loads((tmp_path / name / "seen.json").read_text())
        assert len(slots) == durations[name][0], "a k-wide job holds k slots"
        assert seen["CUDA_VISIBLE_DEVICES"] == status.slot, "and sees exactly those GPUs"
        assert seen["NPROC_PER_NODE"] == (str(len(slots)) if len(slots) > 1 else None)
        runs.append((start, end, slots))
    check_capacity(runs, 4)
    ports = [json.loads((tmp_path / n / "seen.json").read_text())["MASTER_PORT"] for n in ("wide_a", "wide_b")]
    assert None not in ports and ports[0] != ports[1], "two DDP jobs at once never share a rendezvous port"
    windows = {name: JobStatus.read(tmp_path / name / "mprtune-status.json").windows[0] for name in final}
    assert windows["wide_a"][0] < windows["wide_b"][1] and windows["wide_b"][0] < windows["wide_a"][1]
    makespan = max(end for _, end, _ in runs) - min(start for start, _, _ in runs)
    bound = lower_bound(estimates, 4)
    assert makespan <= 2 * bound, (makespan, bound)


def test_the_queue_refuses_a_job_wider_than_every_slot_instead_of_waiting_forever(tmp_path: Path) -> None:
    final = run_queue(
        [sleeper(tmp_path, "too_wide", 0.1, 3), sleeper(tmp_path, "fine", 0.1)], LocalExecutor(gpus=[0, 1])
    )
    assert final["fine"].state == "done"
    assert final["too_wide"].state == "failed" and final["too_wide"].reason == "needs 3 slots at once, only 2 exist"


# --- the matrix, the plan and the environment --------------------------------------------------------


def wide_matrix(tmp_path: Path, gpus: int = 2, model_gpus: str = "") -> Path:
    text = (
        (ROOT / "mprtune.yaml")
        .read_text()
        .replace("\nprofiles:", f"  - {{name: {WIDE}, model: llama31_8b, task: grammar, gpus: {gpus}}}\n\nprofiles:", 1)
    )
    if model_gpus:
        text = text.replace("    params: 8.03e9\n", f"    params: 8.03e9\n    gpus: {model_gpus}\n", 1)
    (tmp_path / "mprtune.yaml").write_text(text)
    return tmp_path / "mprtune.yaml"


def test_a_variant_wider_than_the_machine_is_an_error_at_plan_time(tmp_path: Path) -> None:
    config = wide_matrix(tmp_path, gpus=4)
    for command in (["plan"], ["train", "--dry-run", WIDE]):
        result = CliRunner().invoke(cli, [*command, "--config", str(config), "--runs-dir", str(tmp_path / "runs")])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert (
            f"Error: {WIDE} (gpus: 4): needs more GPUs than the 2 slot(s) of this run (0,1); give it more "
            f"(--gpus, hardware.gpus, --slots) or lower its `gpus`"
        ) in result.output
    ok = CliRunner().invoke(
        cli, ["plan", "--gpus", "0,1,2,3", "--config", str(config), "--runs-dir", str(tmp_path / "runs")]
    )
    assert ok.exit_code == 0, ok.output
    line = next(line for line in ok.output.splitlines() if line.startswith(WIDE) and "h " in line)
    assert line.split()[1] == "0,1,2,3"
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3 " in ok.output and "NPROC_PER_NODE=4" in ok.output


def test_gpus_come_from_the_variant_else_the_model_and_change_the_rendered_config(tmp_path: Path) -> None:
    matrix = load_matrix(wide_matrix(tmp_path, gpus=2, model_gpus="4"))
    assert matrix.variants[WIDE].gpus == 2, "the variant's own gpus wins"
    assert matrix.variants["llama31_8b_paraphrase_lora"].gpus == 4, "else the model's"
    assert matrix.variants["llama32_3b_grammar_lora"].gpus == 1
    ws = Workspace(matrix, tmp_path, tmp_path / "runs")
    spec = train_spec(ws, matrix.variants[WIDE])
    assert spec.width == 2 and spec.env["FORCE_TORCHRUN"] == "1" and spec.env["NPROC_PER_NODE"] == "2"
    assert "# On 2 GPUs at once (torchrun, DDP): effective batch = 2 x" in spec.config_text
    one = train_spec(ws, dataclasses.replace(matrix.variants[WIDE], recipe={**matrix.variants[WIDE].recipe, "gpus": 1}))
    assert "FORCE_TORCHRUN" not in one.env and "torchrun" not in one.config_text
    assert not re.search(r"^gpus:", one.config_text, re.M), "gpus is mprtune's, never LLaMA-Factory's"


# --- torchrun on CPU for real --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_two_slot_variant_really_runs_two_processes_under_torchrun(tiny_project) -> None:
    text = tiny_project.matrix.read_text().replace(
        "\nprofiles:", f"  - {{name: {WIDE}, model: llama32_3b, task: grammar, gpus: 2, max_steps: 4}}\n\nprofiles:", 1
    )
    tiny_project.write_matrix(text)
    result = subprocess.run(
        [sys.executable, "-m", "mprtune", "train", WIDE, "--profile", "tiny", "--slots", "2"],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "MPRTUNE_PROJECT_DIR": str(tiny_project.root)},
    )
    run = tiny_project.root / "runs-tiny" / WIDE
    logs = (run / "stdout.log").read_text() + (run / "stderr.log").read_text()
    assert result.returncode == 0, result.stdout[-1500:] + logs[-3000:]
    status = json.loads((run / "mprtune-status.json").read_text())
    assert status["slot"] == "cpu0,cpu1" and status["state"] == "done"
    assert re.search(r"on slot cpu0,cpu1, torchrun x2 on port \d+", logs)
    ranks = set(re.findall(r"Process rank: (\d), world size: 2, device: cpu", logs))
    assert ranks == {"0", "1"}, "two worker processes, one per slot"
    assert "Total train batch size (w. parallel, distributed & accumulation) = 8" in logs, "4 rows x 2 processes"
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 4
    assert (run / "adapter_model.safetensors").is_file()


# --- Slurm --------------------------------------------------------------------------------------------


def test_scaled_mem() -> None:
    assert [scaled_mem(m, 2) for m in ("64G", "2048M", "64G", "1T", "lots")] == ["128G", "4096M", "128G", "2T", "lots"]
    assert scaled_mem("64G", 1) == "64G"


def test_a_two_gpu_sbatch_script_equals_the_expected_file(tmp_path: Path) -> None:
    ws = Workspace(load_matrix(wide_matrix(tmp_path)), Path("/project"), Path("/project/runs"))
    spec = train_spec(ws, ws.matrix.variants[WIDE])
    executor = SlurmExecutor(partition="gpu", time_limit="12:00:00", account="ml-team", cpus_per_task=8, mem="64G")
    script = executor.script(spec).replace(str(venv_bin()), "<venv>/bin")
    if os.environ.get("MPRTUNE_UPDATE_GOLDEN"):
        GOLDEN.write_text(script)
    assert script == GOLDEN.read_text()
    assert "#SBATCH --gres=gpu:2\n" in script and "#SBATCH --cpus-per-task=16\n" in script
    assert "#SBATCH --mem=128G\n" in script and "export NPROC_PER_NODE=2\n" in script


@pytest.mark.slurm
@pytest.mark.slow
def test_a_two_gpu_variant_runs_on_the_slurm_cluster(tiny_project, slurm_cluster) -> None:
    text = tiny_project.matrix.read_text().replace(
        "\nprofiles:", f"  - {{name: {WIDE}, model: llama32_3b, task: grammar, gpus: 2, max_steps: 4}}\n\nprofiles:", 1
    )
    tiny_project.write_matrix(text)
    result = subprocess.run(
        [sys.executable, "-m", "mprtune", "train", "--backend", "slurm", WIDE, "--profile", "tiny"],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, **slurm_cluster.env, "MPRTUNE_PROJECT_DIR": str(tiny_project.root)},
    )
    run = tiny_project.root / "runs-tiny" / WIDE
    logs = (run / "stdout.log").read_text() + (run / "stderr.log").read_text()
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:] + logs[-3000:]
    assert "#SBATCH --gres=gpu:2\n" in (run / "job.sbatch").read_text()
    assert re.search(r"as Slurm job \d+ on .*, CUDA_VISIBLE_DEVICES=0,1 ", logs), "both fake GPUs, one job"
    assert set(re.findall(r"Process rank: (\d), world size: 2", logs)) == {"0", "1"}
    assert (run / "adapter_model.safetensors").is_file()
