"""Variants that span several Slurm nodes: the script, bad input, and real jobs on a two-node cluster.

The cluster (``slurm_two_nodes``, tests/slurm_cluster.py) is two slurmd daemons on this host, n1 and
n2, one fake GPU each; the jobs train the tiny Llama with gloo on CPU, one rank per node.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mprtune.config.matrix import load_matrix
from mprtune.launch.backends.slurm import SlurmExecutor
from mprtune.launch.backends.slurm_jobcomp import read_jobcomp
from mprtune.launch.backends.slurm_nodes import gpu_count
from mprtune.launch.env import venv_bin
from mprtune.launch.train import train_spec
from mprtune.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "sbatch" / "llama31_8b_grammar_2nodes.sbatch"
WIDE = "wide_lora"  # the tiny model on two nodes, one (fake) GPU each


# CPU only: with gloo DDP, accelerate makes the device `cpu:0`, which the Trainer passes to torch.load
# as map_location when it resumes the optimizer, and torch cannot restore `cpu:0` storage. Pinning the
# device to plain `cpu` (in the batch shell; srun hands it to every node) lets a CPU job resume; GPU
# jobs get `cuda:N` and never meet this.
CPU_SETUP = '      setup: ["export ACCELERATE_TORCH_DEVICE=cpu"]\n'


def with_variant(project, line: str, steps: int | None = None) -> None:
    text = project.matrix.read_text().replace("\nprofiles:", f"  - {line}\n\nprofiles:", 1)
    if CPU_SETUP not in text:
        head, tiny = text.split("\n  tiny:", 1)  # the tiny profile's slurm section
        text = head + "\n  tiny:" + tiny.replace('      time: "01:00:00"\n', '      time: "01:00:00"\n' + CPU_SETUP, 1)
    if steps:
        text = text.replace("      max_steps: 12\n", f"      max_steps: {steps}\n")
    project.write_matrix(text)


def mprtune(cluster, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **(cluster.env if cluster else {})}
    return subprocess.run(
        [sys.executable, "-m", "mprtune", *args, "--profile", "tiny"], capture_output=True, text=True, env=env
    )


def test_the_two_node_sbatch_script_equals_the_expected_file() -> None:
    ws = Workspace(load_matrix(ROOT / "mprtune.yaml"), Path("/project"), Path("/project/runs"))
    variant = ws.matrix.variants["llama31_8b_grammar_lora"]
    variant = dataclasses.replace(variant, recipe={**variant.recipe, "nodes": 2, "gpus": 8, "deepspeed": "zero3"})
    script = SlurmExecutor(partition="gpu", time_limit="12:00:00").script(train_spec(ws, variant))
    script = script.replace(str(venv_bin()), "<venv>/bin")
    if os.environ.get("MPRTUNE_UPDATE_GOLDEN"):
        GOLDEN.write_text(script)
    assert script == GOLDEN.read_text()
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n" in script and "--gres=gpu:8" in script
    # Per-node values must reach each step unexpanded: in the batch shell every node would be rank 0.
    step = script.splitlines()[-1]
    assert "srun --kill-on-bad-exit=1" in step and "'record=$1;" in step and 'NODE_RANK="$SLURM_NODEID"' in step


def test_gres_strings_count_gpus() -> None:
    assert [gpu_count(g) for g in ("gpu:2", "gpu:a100:8(S:0-1)", "gpu:1,shard:4", "(null)")] == [2, 8, 1, 0]


def test_the_rendered_config_of_a_multi_node_variant_sets_a_long_ddp_timeout(tiny_project) -> None:
    with_variant(tiny_project, "{name: wide_lora, model: llama32_3b, task: grammar, nodes: 2}")
    with_variant(
        tiny_project, "{name: own_timeout, model: llama32_3b, task: grammar, nodes: 2, extra_args: {ddp_timeout: 60}}"
    )
    assert mprtune(None, "render").returncode == 0
    folder = tiny_project.root / ".mprtune" / "profiles" / "tiny" / "llamafactory_configs"
    assert "\nddp_timeout: 10800\n" in (folder / "wide_lora.yaml").read_text()
    own = (folder / "own_timeout.yaml").read_text()
    assert "ddp_timeout: 60" in own and "10800" not in own
    assert "ddp_timeout" not in (folder / "llama32_3b_grammar_lora.yaml").read_text()


@pytest.mark.parametrize(
    "line,message",
    [
        ("{name: zero, model: llama32_3b, task: grammar, nodes: 0}", "variants.zero.nodes: "),
        ("{name: two, model: llama32_3b, task: grammar, nodes: two}", "variants.two.nodes: expected an integer"),
    ],
)
def test_bad_node_counts_name_the_key(tiny_project, line: str, message: str) -> None:
    with_variant(tiny_project, line)
    result = mprtune(None, "plan")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_multi_node_variant_on_the_local_queue_is_refused_naming_it(tiny_project) -> None:
    with_variant(tiny_project, "{name: wide_lora, model: llama32_3b, task: grammar, nodes: 2}")
    for args in (("plan", "wide_lora"), ("train", "--slots", "2", "wide_lora")):
        result = mprtune(None, *args)
        assert result.returncode == 2, result.stderr
        assert "wide_lora: nodes: 2 needs the Slurm backend" in result.stderr and "--backend slurm" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tiny_project.root / "runs-tiny" / "wide_lora").exists(), "nothing was started"


# --- against the real two-node cluster --------------------------------------------------------


@pytest.mark.slurm
def test_plan_shows_nodes_and_gpu_hours_and_refuses_what_the_partition_cannot_hold(tiny_project, slurm_two_nodes):
    with_variant(tiny_project, "{name: wide_lora, model: llama32_3b, task: grammar, nodes: 2}")
    with_variant(tiny_project, "{name: three_nodes, model: llama32_3b, task: grammar, nodes: 3}")
    with_variant(tiny_project, "{name: fat_nodes, model: llama32_3b, task: grammar, nodes: 2, gpus: 2}")
    plan = mprtune(slurm_two_nodes, "plan", "--backend", "slurm", "wide_lora")
    assert plan.returncode == 0, plan.stderr
    assert "wide_lora: 2 nodes × 1 GPU" in plan.stdout and "GPU-hours in all" in plan.stdout
    for cmd in ("plan", "train"):
        refused = mprtune(slurm_two_nodes, cmd, "--backend", "slurm", "three_nodes", "fat_nodes", "wide_lora")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert any("three_nodes: nodes: 3, but partition debug has 2 node(s)" in x for x in lines), lines
        assert any("fat_nodes: gpus: 2 per node, but the nodes of partition debug offer at most 1" in x for x in lines)
    queue = slurm_two_nodes.run("squeue", "--noheader", "--format=%j").stdout.split()
    assert "wide_lora" not in queue and not (tiny_project.root / "runs-tiny" / "wide_lora").exists()


@pytest.mark.slurm
@pytest.mark.slow
def test_the_tiny_model_trains_across_two_nodes_resumes_when_requeued_and_is_compared(tiny_project, slurm_two_nodes):
    with_variant(tiny_project, "{name: wide_lora, model: llama32_3b, task: grammar, nodes: 2}", steps=16)
    run = tiny_project.root / "runs-tiny" / WIDE
    start = time.monotonic()
    train = subprocess.Popen(
        [sys.executable, "-m", "mprtune", "train", "--backend", "slurm", WIDE, "--profile", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **slurm_two_nodes.env},
    )
    deadline = time.monotonic() + 300
    while not (run / "checkpoint-4" / "trainer_state.json").is_file():
        assert time.monotonic() < deadline and train.poll() is None, (run / "stderr.log").read_text()[-2000:]
        time.sleep(0.2)
    job_id = json.loads((run / "mprtune-status.json").read_text())["job_id"]
    slurm_two_nodes.run("scontrol", "requeue", job_id)  # what preemption with requeue does
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # skip Slurm's requeue delay once the job is pending again
        state = slurm_two_nodes.run("squeue", "-h", "-o", "%T", "-j", job_id, check=False).stdout.strip()
        if state == "PENDING":
            slurm_two_nodes.run("scontrol", "update", f"JobId={job_id}", "StartTime=now", check=False)
        elif state == "RUNNING" and (run / "stdout.log").read_text().count("as Slurm job") == 2:
            break
        time.sleep(0.5)
    out, err = train.communicate(timeout=400)
    print(f"two-node train of {WIDE} with one requeue: {time.monotonic() - start:.1f} s wall")
    assert train.returncode == 0, out[-1000:] + err[-2000:]
    record = read_jobcomp(slurm_two_nodes.jobcomp)[job_id]
    assert record.state == "COMPLETED" and record.fields.get("NodeList") == "n[1-2]", record

    # Each node ran its own step, with its own rank, twice (before and after the requeue); both
    # resumed from the one checkpoint the batch script chose.
    batch_log = (run / "stdout.log").read_text()
    resumed = re.findall(r"resuming from (checkpoint-\d+)", batch_log)
    assert len(resumed) == 1, batch_log[-2000:]
    logs = [(run / f"node-{rank}.log").read_text() for rank in (0, 1)]
    for rank, (log, name) in enumerate(zip(logs, ("n1", "n2"), strict=True)):
        starts = [x for x in log.splitlines() if "===== mprtune: node" in x]
        assert len(starts) == 2 and all(f"node {name}, rank {rank} of 2" in x for x in starts), starts
        assert "resume_from_checkpoint" not in starts[0]
        assert starts[1].endswith(f"resume_from_checkpoint={run / resumed[0]} ====="), starts[1]
    # One DDP run over both nodes: rank 0's Trainer counts both ranks' batches.
    batch = 4  # the recipe's per_device_train_batch_size; accumulation 1 in the tiny profile
    assert f"Total train batch size (w. parallel, distributed & accumulation) = {2 * batch}" in logs[0]
    assert all(log.count("Loaded tokenized dataset from") == 2 for log in logs), "tokenized once, before the ranks"
    assert "mprtune: tokenized the dataset into" in batch_log and "reusing the tokenized dataset" in batch_log
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 16
    saved = sorted(run.glob("**/adapter_model.safetensors"))
    assert saved == sorted([run / "adapter_model.safetensors", *run.glob("checkpoint-*/adapter_model.safetensors")])
    wandb_runs = {re.sub(r"^offline-run-\d{8}_\d{6}-", "", p.name) for p in (run / "wandb").glob("offline-run-*")}
    assert len(wandb_runs) == 1, "one W&B run (from rank 0), continued after the requeue"

    collected = mprtune(slurm_two_nodes, "collect")
    assert collected.returncode == 0 and WIDE in (tiny_project.root / "runs-tiny" / "collect.csv").read_text()
    compared = mprtune(slurm_two_nodes, "compare", "--slots", "2", WIDE)
    assert compared.returncode == 0, compared.stderr[-2000:]
    report = Path(compared.stdout.strip().splitlines()[-1].split("Report: ")[1]).parent
    results = json.loads((report / "results.json").read_text())
    assert [v["variant"] for v in results["variants"]] == [WIDE]


def node_processes(job_id: str, node_id: str) -> list[int]:
    """Pids of the LLaMA-Factory training workers of one node of one job (found by their environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = dict(x.split("=", 1) for x in (proc / "environ").read_bytes().decode().split("\0") if "=" in x)
            cmdline = (proc / "cmdline").read_bytes().decode()
        except (OSError, UnicodeDecodeError):
            continue
        if env.get("SLURM_JOB_ID") == job_id and env.get("SLURM_NODEID") == node_id and "launcher.py" in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.slurm
@pytest.mark.slow
def test_a_step_killed_on_one_node_fails_the_job_naming_that_nodes_log(tiny_project, slurm_two_nodes) -> None:
    with_variant(tiny_project, "{name: wide_lora, model: llama32_3b, task: grammar, nodes: 2}", steps=400)
    run = tiny_project.root / "runs-tiny" / WIDE
    train = subprocess.Popen(
        [sys.executable, "-m", "mprtune", "train", "--backend", "slurm", "--retries", "0", WIDE, "--profile", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **slurm_two_nodes.env},
    )
    deadline = time.monotonic() + 240
    while not (run / "trainer_log.jsonl").is_file():
        assert time.monotonic() < deadline and train.poll() is None, (run / "stderr.log").read_text()[-2000:]
        time.sleep(0.2)
    job_id = json.loads((run / "mprtune-status.json").read_text())["job_id"]
    victims = node_processes(job_id, "1")
    assert victims, "n2's training worker is running"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    out, err = train.communicate(timeout=180)
    print("\n".join(line for line in err.splitlines() if line.startswith("FAILED") or "srun: " in line))
    assert train.returncode == 1, out[-1000:] + err[-2000:]
    assert f"FAILED {WIDE}" in err
    assert re.search(r"error on node n2 \(rank 1, exit \d+\); its log: \S*node-1\.log", err), err[-2000:]
    record = read_jobcomp(slurm_two_nodes.jobcomp)[job_id]
    assert record.state == "FAILED", record
    status = json.loads(mprtune(slurm_two_nodes, "status", "--json").stdout)
    row = {r["variant"]: r for r in status}[WIDE]
    assert row["state"] == "failed" and "node-1.log" in row["reason"]
    assert not (run / "adapter_model.safetensors").exists()
