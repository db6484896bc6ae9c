"""`mprtune train` end to end with real llamafactory-cli on the tiny model, and fault injection."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli

pytestmark = pytest.mark.slow
A, B = "llama32_3b_grammar_lora", "llama31_8b_grammar_lora"


def mprtune(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mprtune", *args], capture_output=True, text=True, **kwargs)


def status_json(*extra: str) -> dict[str, dict]:
    result = CliRunner().invoke(cli, ["status", "--json", "--profile", "tiny", *extra])
    assert result.exit_code == 0, result.output
    return {row["variant"]: row for row in json.loads(result.output)}


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "adapter" in p.name
    }


def wait_for(predicate, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def slow_demo(project, max_steps: int = 40) -> None:
    """Longer demo runs so a signal can land between checkpoints."""
    text = project.matrix.read_text().replace("      max_steps: 12\n", f"      max_steps: {max_steps}\n")
    project.write_matrix(text)


SECRETS = {"WANDB_API_KEY": "wandb-secret-0123456789abcdef", "HF_TOKEN": "hf_secretTOKEN0123456789"}


def test_two_variants_train_concurrently_then_a_rerun_launches_nothing(tiny_project) -> None:
    runs = tiny_project.root / "runs-tiny"
    result = mprtune("train", "--profile", "tiny", "--slots", "2", A, B, env={**os.environ, **SECRETS})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"2 trained, 0 failed; runs in {runs}" in result.stdout
    assert result.stderr == "" and "wandb:" not in result.stdout, "library chatter goes to the run logs"
    for name in (A, B):
        assert (runs / name / "adapter_model.safetensors").is_file()
        assert (runs / name / "train_results.json").is_file()
    rows = status_json()
    assert rows[A]["state"] == rows[B]["state"] == "done"
    assert rows[A]["step"] == rows[A]["total_steps"] == 12
    (a_start, a_end), (b_start, b_end) = rows[A]["windows"][-1], rows[B]["windows"][-1]
    assert a_start < b_end and b_start < a_end, "the two jobs' running windows overlap"
    assert {rows[A]["slot"], rows[B]["slot"]} == {"cpu0", "cpu1"}

    # W&B offline: one run directory per variant, named after it, grouped by task.
    for name in (A, B):
        wandb_runs = list((runs / name / "wandb").glob("offline-run-*"))
        assert len(wandb_runs) == 1 and wandb_runs[0].name.split("-", 3)[-1].startswith(name)
    env = json.loads((runs / A / "mprtune-status.json").read_text())
    assert env["state"] == "done"

    for path in runs.rglob("*"):  # secrets are inherited by the jobs, never written down
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret.encode() in data for secret in SECRETS.values()), path
    assert not any(secret in result.stdout + result.stderr for secret in SECRETS.values())

    before = {name: digests(runs / name) for name in (A, B)}
    again = mprtune("train", "--profile", "tiny", "--slots", "2", A, B)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "[started]" not in again.stdout
    assert "0 trained, 0 failed, 2 reused (finished earlier, not retrained)" in again.stdout
    assert before == {name: digests(runs / name) for name in (A, B)}, "adapters are bit-for-bit unchanged"

    # collect: inventory + loss curves; export: a merged model transformers loads.
    inventory = CliRunner().invoke(cli, ["collect", "--profile", "tiny"])
    assert inventory.exit_code == 0, inventory.output
    records = {r["variant"]: r for r in json.loads((runs / "collect.json").read_text())}
    assert records[A]["state"] == "done" and records[A]["adapter_bytes"] > 0 and records[A]["steps"] == 12
    assert records[A]["checkpoints"] == ["checkpoint-4", "checkpoint-8", "checkpoint-12"]
    assert (runs / "collect.csv").read_text().startswith("variant,")
    assert (runs / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    merged = tiny_project.root / "merged"
    run_files = {p: p.read_bytes() for p in (runs / A).rglob("*") if p.is_file()}
    exported = CliRunner().invoke(cli, ["export", A, "--profile", "tiny", "--out", str(merged)])
    assert exported.exit_code == 0, exported.output
    assert {p: p.read_bytes() for p in (runs / A).rglob("*") if p.is_file()} == run_files, "export wrote into the run"
    assert (merged / "mprtune-export.yaml").is_file() and (merged / "mprtune-export.log").is_file()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(merged)
    assert AutoTokenizer.from_pretrained(merged).convert_tokens_to_ids("<|eot_id|>") is not None
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_sigkill_of_the_whole_train_group_resumes_from_the_checkpoint(tiny_project) -> None:
    slow_demo(tiny_project)
    run = tiny_project.root / "runs-tiny" / A
    proc = subprocess.Popen(
        [sys.executable, "-m", "mprtune", "train", "--profile", "tiny", "--slots", "1", A],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for(lambda: (run / "checkpoint-4" / "trainer_state.json").is_file(), what="the first checkpoint")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    child = json.loads((run / "mprtune-status.json").read_text())["job_id"]
    wait_for(
        lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text(),
        timeout=10,
        what="the orphaned llamafactory-cli to die with its parent",
    )
    assert not (run / "adapter_model.safetensors").exists()
    from mprtune.launch.state import checkpoint_problem

    checkpoint = max(int(p.name.split("-")[1]) for p in run.glob("checkpoint-*") if checkpoint_problem(p) is None)
    assert status_json()[A]["state"] == "interrupted"

    result = mprtune("train", "--profile", "tiny", "--slots", "1", A)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resume from checkpoint-{checkpoint}" in result.stdout
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["global_step"] == 40
    logged = [json.loads(line) for line in (run / "trainer_log.jsonl").read_text().splitlines()]
    steps = [row["current_steps"] for row in logged if row.get("loss") is not None]
    # The resumed attempt logs from checkpoint + 1 on: a restart point, if the first attempt got past it.
    restarts = [i for i in range(1, len(steps)) if steps[i] <= steps[i - 1]]
    assert all(steps[i] == checkpoint + 1 for i in restarts), steps
    assert steps[-1] == 40 and sorted(set(steps)) == list(range(1, 41)), steps
    # W&B: the resumed attempt continues the same run id.
    assert len(list((run / "wandb").glob("offline-run-*"))) == 2
    ids = {p.name.rsplit("-", 2)[-2] + "-" + p.name.rsplit("-", 1)[-1] for p in (run / "wandb").glob("offline-run-*")}
    assert len(ids) == 1


def test_a_failing_job_is_retried_then_reported_while_the_other_completes(tiny_project) -> None:
    text = tiny_project.matrix.read_text().replace(
        "  - {name: llama31_8b_qqp_only_lora, model: llama31_8b, task: qqp_only}\n",
        "  - {name: llama31_8b_qqp_only_lora, model: llama31_8b, task: qqp_only}\n"
        "  - {name: broken_lora, model: llama31_8b, task: grammar, lora_target: no_such_module}\n",
    )
    tiny_project.write_matrix(text)
    result = mprtune("train", "--profile", "tiny", "--slots", "2", "--retries", "2", A, "broken_lora")
    assert result.returncode == 1
    assert result.stdout.count("[retrying] broken_lora") == 2
    failed = next(line for line in result.stderr.splitlines() if line.startswith("FAILED broken_lora:"))
    # The reason quotes the real error line of the job's log, not just an exit code.
    assert failed.startswith("FAILED broken_lora: exit code 1: ") and "no_such_module" in failed, failed
    status = json.loads((tiny_project.root / "runs-tiny/broken_lora/mprtune-status.json").read_text())
    assert status["state"] == "failed" and status["attempt"] == 3 and "no_such_module" in status["log_tail"]
    assert (tiny_project.root / "runs-tiny" / A / "adapter_model.safetensors").is_file()


def test_sigint_stops_every_child_and_leaves_the_run_resumable(tiny_project) -> None:
    slow_demo(tiny_project, max_steps=400)
    run = tiny_project.root / "runs-tiny" / A
    proc = subprocess.Popen(
        [sys.executable, "-m", "mprtune", "train", "--profile", "tiny", "--slots", "1", A],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (run / "trainer_log.jsonl").is_file(), what="training to start")
    child = json.loads((run / "mprtune-status.json").read_text())["job_id"]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert not Path(f"/proc/{child}").exists(), "llamafactory-cli child still alive"
    ps = subprocess.run(["pgrep", "-f", str(run / "job.yaml")], capture_output=True, text=True)
    assert ps.stdout.strip() == "", "no process of the job is left"
    assert status_json()[A]["state"] == "interrupted"


def test_a_second_concurrent_train_is_refused(tiny_project) -> None:
    from mprtune.launch.train import runs_lock

    runs = tiny_project.root / "runs-tiny"
    with runs_lock(runs):
        result = mprtune("train", "--profile", "tiny", "--slots", "1", A)
    assert result.returncode == 2
    assert "another `mprtune train`" in result.stderr and "Traceback" not in result.stderr
    assert not (runs / A).exists()
