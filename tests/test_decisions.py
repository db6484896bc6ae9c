"""What `train` decides from a run folder alone (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.config.matrix import load_matrix
from mprtune.launch.env import job_env, stable_run_id
from mprtune.launch.jobs import JobStatus
from mprtune.launch.train import decide, run_config
from mprtune.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
NAME = "llama32_3b_grammar_lora"


def complete_checkpoint(folder: Path, step: int) -> Path:
    """What the Trainer writes for a LoRA checkpoint, small but complete (zips, safetensors, state)."""
    import zipfile

    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    for name in ("optimizer.pt", "scheduler.pt"):
        with zipfile.ZipFile(folder / name, "w") as archive:
            archive.writestr("data.pkl", b"x")
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (folder / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    return folder


def finished_run(runs: Path, sha: str | None) -> Path:
    folder = runs / NAME
    folder.mkdir(parents=True)
    (folder / "train_results.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    JobStatus(NAME, "train", state="done", config_sha256=sha).write(folder / "mprtune-status.json")
    return folder


def test_finished_runs_are_skipped_and_a_changed_config_is_reported(tmp_path: Path) -> None:
    from mprtune.launch.state import config_digest

    ws = Workspace(load_matrix(ROOT / "mprtune.yaml"), ROOT, tmp_path)
    variant = ws.matrix.variants[NAME]
    folder = finished_run(tmp_path, config_digest(run_config(ws, variant)))
    assert decide(ws, variant).action == "skip"
    status = JobStatus.read(folder / "mprtune-status.json")
    status.config_sha256 = "something-else"
    status.write(folder / "mprtune-status.json")
    decision = decide(ws, variant)
    assert decision.action == "skip" and "config changed since: NOT retrained" in decision.reason


def test_a_checkpoint_means_resume_never_restart(tmp_path: Path) -> None:
    ws = Workspace(load_matrix(ROOT / "mprtune.yaml"), ROOT, tmp_path)
    variant = ws.matrix.variants[NAME]
    for step in (200, 1000, 400):
        complete_checkpoint(tmp_path / NAME / f"checkpoint-{step}", step)
    decision = decide(ws, variant)
    assert decision.action == "resume" and decision.checkpoint.endswith("checkpoint-1000")
    plan = CliRunner().invoke(cli, ["plan", NAME, "--config", str(ROOT / "mprtune.yaml"), "--runs-dir", str(tmp_path)])
    decision = next(line for line in plan.output.splitlines() if line.startswith(NAME))
    assert decision.split()[1:] == ["resume", "resume", "from", "checkpoint-1000"], decision
    assert f"-m mprtune.launch.resume {tmp_path / NAME} -- " in plan.output  # decided again when it starts


def test_job_environment_is_per_variant_and_holds_no_secrets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-123")
    monkeypatch.delenv("WANDB_MODE")
    matrix = load_matrix(ROOT / "mprtune.yaml")
    env = job_env(matrix, matrix.variants[NAME], tmp_path / NAME)
    assert env["WANDB_RUN_GROUP"] == "grammar" and env["WANDB_DIR"] == str(tmp_path / NAME)
    assert env["WANDB_RUN_ID"] == stable_run_id(matrix, NAME) and env["WANDB_RESUME"] == "allow"
    assert env["WANDB_MODE"] == "online", "logged in (API key present): W&B stays online"
    assert env["PATH"].split(":")[0].endswith("bin")
    assert "secret-key-123" not in json.dumps(env)
    plan = CliRunner().invoke(cli, ["plan", "--config", str(ROOT / "mprtune.yaml"), "--runs-dir", str(tmp_path)])
    assert plan.exit_code == 0 and "secret-key-123" not in plan.output
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login either
    assert job_env(matrix, matrix.variants[NAME], tmp_path)["WANDB_MODE"] == "offline"


def test_failures_are_classified_from_the_exit_status_and_log_tail() -> None:
    from mprtune.launch.state import classify_failure

    assert classify_failure(1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate").startswith(
        "CUDA out of memory"
    )
    assert classify_failure(-9, "") == "killed by signal 9"
    assert classify_failure(1, "ValueError: Some keys are not used by the HfArgumentParser: ['x']").startswith(
        "config error"
    )
    assert classify_failure(1, "ValueError: Undefined dataset jfleg_train in dataset_info.json.").startswith(
        "missing data"
    )
    assert classify_failure(3, "something else") == "exit code 3"


def test_train_refuses_to_launch_without_prepared_data(project) -> None:
    result = CliRunner().invoke(cli, ["train", "llama32_3b_grammar_lora", "--slots", "1"])
    assert result.exit_code == 2
    assert "training data missing" in result.output and "mprtune prepare-data grammar" in result.output
    assert not (project.root / "runs").exists()


def test_train_without_the_dataset_registry_says_to_render(tiny_project) -> None:
    (tiny_project.root / "data/samples/dataset_info.json").unlink()
    result = CliRunner().invoke(cli, ["train", "llama32_3b_grammar_lora", "--profile", "tiny", "--slots", "1"])
    assert result.exit_code == 2, result.output
    assert "dataset_info.json missing: run `mprtune render --profile tiny`" in result.output
    assert not (tiny_project.root / "runs-tiny").exists()
