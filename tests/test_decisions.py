"""What `train` decides from a run folder alone (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.jobs import JobStatus
from mprtune.launcher import decide, job_env, run_config, stable_run_id
from mprtune.matrix import load_matrix

ROOT = Path(__file__).resolve().parents[1]
NAME = "llama32_3b_grammar_lora"


def finished_run(runs: Path, sha: str | None) -> Path:
    folder = runs / NAME
    folder.mkdir(parents=True)
    (folder / "train_results.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    JobStatus(NAME, "train", state="done", config_sha256=sha).write(folder / "mprtune-status.json")
    return folder


def test_finished_runs_are_skipped_and_a_changed_config_is_reported(tmp_path: Path) -> None:
    from mprtune.runstate import config_digest

    matrix = load_matrix(ROOT / "mprtune.yaml")
    variant = matrix.variants[NAME]
    folder = finished_run(tmp_path, config_digest(run_config(matrix, variant, tmp_path / NAME, ROOT)))
    assert decide(matrix, variant, tmp_path, ROOT).action == "skip"
    status = JobStatus.read(folder / "mprtune-status.json")
    status.config_sha256 = "something-else"
    status.write(folder / "mprtune-status.json")
    decision = decide(matrix, variant, tmp_path, ROOT)
    assert decision.action == "skip" and "config changed since: NOT retrained" in decision.reason


def test_a_checkpoint_means_resume_never_restart(tmp_path: Path) -> None:
    matrix = load_matrix(ROOT / "mprtune.yaml")
    variant = matrix.variants[NAME]
    for step in (200, 1000, 400):
        (tmp_path / NAME / f"checkpoint-{step}").mkdir(parents=True)
    decision = decide(matrix, variant, tmp_path, ROOT)
    assert decision.action == "resume" and decision.checkpoint.endswith("checkpoint-1000")
    plan = CliRunner().invoke(cli, ["plan", NAME, "--config", str(ROOT / "mprtune.yaml"), "--runs-dir", str(tmp_path)])
    assert f"resume_from_checkpoint={tmp_path / NAME / 'checkpoint-1000'}" in plan.output


def test_job_environment_is_per_variant_and_holds_no_secrets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-123")
    monkeypatch.delenv("WANDB_MODE")
    matrix = load_matrix(ROOT / "mprtune.yaml")
    env = job_env(matrix, matrix.variants[NAME], tmp_path / NAME)
    assert env["WANDB_RUN_GROUP"] == "grammar" and env["WANDB_DIR"] == str(tmp_path / NAME)
    assert env["WANDB_RUN_ID"] == stable_run_id(matrix, NAME) and env["WANDB_RESUME"] == "allow"
    assert "WANDB_MODE" not in env, "logged in (API key present): W&B stays online"
    assert env["PATH"].split(":")[0].endswith("bin")
    assert "secret-key-123" not in json.dumps(env)
    plan = CliRunner().invoke(cli, ["plan", "--config", str(ROOT / "mprtune.yaml"), "--runs-dir", str(tmp_path)])
    assert plan.exit_code == 0 and "secret-key-123" not in plan.output
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login either
    assert job_env(matrix, matrix.variants[NAME], tmp_path)["WANDB_MODE"] == "offline"


def test_failures_are_classified_from_the_exit_status_and_log_tail() -> None:
    from mprtune.runstate import classify_failure

    assert classify_failure(1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate").startswith(
        "CUDA out of memory")
    assert classify_failure(-9, "") == "killed by signal 9"
    assert classify_failure(1, "ValueError: Some keys are not used by the HfArgumentParser: ['x']").startswith(
        "config error")
    assert classify_failure(1, "ValueError: Undefined dataset jfleg_train in dataset_info.json.").startswith(
        "missing data")
    assert classify_failure(3, "something else") == "exit code 3"


def test_train_refuses_to_launch_without_prepared_data(project) -> None:
    result = CliRunner().invoke(cli, ["train", "llama32_3b_grammar_lora"])
    assert result.exit_code == 2
    assert "training data missing" in result.output and "mprtune prepare-data grammar" in result.output
    assert not (project.root / "runs").exists()
