"""Faults that must never lose a run nor touch what is not ours: a reused pid, a full disk, damaged checkpoints.

The fast tests run the real CLI with a stand-in `llamafactory-cli` (a script that writes the files
LLaMA-Factory writes at the end of a run); the slow ones run the real llamafactory-cli on the tiny model.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.launch.backends.local import LocalExecutor, process_start_time
from mprtune.launch.jobs import JobStatus

A, B = "llama32_3b_grammar_lora", "llama31_8b_grammar_lora"
FAKE_LLAMAFACTORY = """#!{python}
# Stand-in for `llamafactory-cli train job.yaml [key=value]`: the files a finished LoRA run leaves.
import json, pathlib, sys, yaml
config = yaml.safe_load(open(sys.argv[2]))
out = pathlib.Path(config["output_dir"])
(out / "trainer_log.jsonl").write_text(json.dumps({{"current_steps": 1, "total_steps": 1, "loss": 1.0}}) + "\\n")
(out / "adapter_model.safetensors").write_bytes(b"adapter")
(out / "train_results.json").write_text(json.dumps({{"train_runtime": 0.1, "resumed": sys.argv[3:]}}))
"""


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def fake_project(project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The project with a stand-in llamafactory-cli and model folders in place (no torch, no training)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "llamafactory-cli"
    fake.write_text(FAKE_LLAMAFACTORY.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr("mprtune.launch.train.venv_bin", lambda: bin_dir)
    for name in ("tiny-llama-a", "tiny-llama-b"):
        model = project.root / ".mprtune" / "models" / name
        model.mkdir(parents=True)
        (model / "config.json").write_text("{}")
        (model / "tokenizer.json").write_text("{}")
    return project


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- folders that are not ours


def test_tiny_model_refuses_the_project_folder_itself(project, monkeypatch) -> None:
    before = tree(project.root)
    monkeypatch.chdir(project.root)
    code, output = invoke("tiny-model", ".")
    assert code == 2 and "was not created by mprtune" in output and output.count("Error: ") == 1
    assert tree(project.root) == before


def test_a_model_path_pointing_at_a_data_folder_makes_train_refuse_not_delete(project) -> None:
    text = project.matrix.read_text().replace("path: .mprtune/models/tiny-llama-b", "path: data/samples")
    project.write_matrix(text)
    before = tree(project.root / "data")
    code, output = invoke("train", "--profile", "tiny", "--slots", "1", B)
    assert code == 2 and output.count("Error: ") == 1, output
    assert "data/samples: exists and was not created by mprtune" in output
    assert tree(project.root / "data") == before, "the data folder was touched"


def test_only_folders_mprtune_marked_are_replaceable(tmp_path: Path) -> None:
    from mprtune.errors import MprtuneError
    from mprtune.models.folders import MARKER, check_replaceable, replace_folder

    made = replace_folder(tmp_path / "model", lambda staging: (staging / "w").write_text("1"), {"kind": "test"})
    assert (made / MARKER).is_file()
    replace_folder(made, lambda staging: (staging / "w").write_text("2"), {"kind": "test"})  # ours: replaced
    assert (made / "w").read_text() == "2"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep").write_text("precious")
    with pytest.raises(MprtuneError, match="was not created by mprtune"):
        replace_folder(theirs, lambda staging: None, {"kind": "test"})
    assert (theirs / "keep").read_text() == "precious"
    check_replaceable(tmp_path / "new")  # absent: fine


def test_train_builds_no_model_when_nothing_is_to_do_or_the_lock_is_taken(project) -> None:
    from mprtune.launch.train import runs_lock

    runs = project.root / "runs-tiny"
    run = runs / A
    run.mkdir(parents=True)
    (run / "train_results.json").write_text("{}")
    (run / "adapter_model.safetensors").write_bytes(b"x")
    code, output = invoke("train", "--profile", "tiny", "--slots", "1", A)
    assert code == 0 and "0 trained" in output
    with runs_lock(runs):
        code, output = invoke("train", "--profile", "tiny", "--slots", "1", B)
    assert code == 2 and "another `mprtune train`" in output
    assert not (project.root / ".mprtune" / "models").exists(), "a tiny model was built for nothing"
    assert not (runs / B).exists()


def test_render_of_a_profile_looks_for_its_datasets_where_it_trains_from(project) -> None:
    (project.root / "data" / "samples" / "paws_train.jsonl").unlink()
    code, output = invoke("render", "--profile", "tiny", "--no-lf-check")
    warning = [line for line in output.splitlines() if line.startswith("Warning: ")]
    assert code == 0 and len(warning) == 1, output
    assert f"1 dataset(s) not prepared yet in {project.root / 'data' / 'samples'} (paws_train)" in warning[0]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has GPUs")
def test_gpu_ids_on_a_machine_without_gpus_refuse_to_train_and_plan_warns(fake_project) -> None:
    code, output = invoke("train", "--profile", "tiny", "--gpus", "0", B)
    assert code == 2 and "--gpus: GPU ids [0] requested but nvidia-smi is not available" in output, output
    assert not (fake_project.root / "runs-tiny" / B).exists(), "nothing ran on the CPU instead"
    code, output = invoke("plan", "--profile", "tiny", "--gpus", "0,1", B)
    assert code == 0 and "(the plan assumes them; `train` will refuse)" in output


# --------------------------------------------------------------------------- a reused pid


@pytest.fixture
def stranger():
    """An unrelated live process leading its own process group, as a reused pid would be."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def recorded_running(project, pid: int, identity: str | None) -> Path:
    folder = project.root / "runs-tiny" / B
    folder.mkdir(parents=True)
    JobStatus(
        B, "train", state="running", slot="cpu0", job_id=str(pid), identity=identity, started_at=time.time()
    ).write(folder / "mprtune-status.json")
    return folder


def test_a_reused_pid_is_never_signalled_nor_believed_running(project, stranger) -> None:
    recorded_running(project, stranger.pid, identity="12345")  # the start time of the process WE had started
    code, output = invoke("cancel", "--profile", "tiny", B)
    assert code == 0 and "Nothing running to cancel." in output
    time.sleep(0.2)
    assert stranger.poll() is None, "an unrelated process was signalled"
    code, output = invoke("status", "--profile", "tiny", "--json")
    state = {row["variant"]: row["state"] for row in json.loads(output)}[B]
    assert state == "interrupted"
    code, output = invoke("train", "--profile", "tiny", "--slots", "1", "--dry-run", B)
    decision = next(line for line in output.splitlines() if line.startswith(B))
    assert code == 0 and decision.split()[1] == "start", decision


def test_a_job_that_is_provably_ours_is_running_and_cancelled(project, stranger) -> None:
    """The control: the same process with its real start time recorded is ours (so the test above can fail)."""
    folder = recorded_running(project, stranger.pid, identity=process_start_time(stranger.pid))
    code, output = invoke("status", "--profile", "tiny", "--json")
    assert {row["variant"]: row["state"] for row in json.loads(output)}[B] == "running"
    code, output = invoke("train", "--profile", "tiny", "--slots", "1", "--dry-run", B)
    assert f"skip    running (job {stranger.pid})" in output
    code, output = invoke("cancel", "--profile", "tiny", B)
    assert code == 0 and f"Cancelled: {B}" in output
    assert stranger.wait(timeout=10) == -signal.SIGTERM
    assert JobStatus.read(folder / "mprtune-status.json").state == "cancelled"


# --------------------------------------------------------------------------- a full disk


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "runs-tiny/job-file")


def test_a_full_disk_while_launching_fails_the_job_and_a_rerun_completes(fake_project, monkeypatch) -> None:
    run = fake_project.root / "runs-tiny" / B
    run.mkdir(parents=True)  # an earlier, interrupted attempt left its status file
    JobStatus(B, "train", state="interrupted", attempt=1).write(run / "mprtune-status.json")
    with monkeypatch.context() as full:
        full.setattr(LocalExecutor, "submit", no_space)  # the job's log files cannot be created
        full.setattr("mprtune.launch.jobs.atomic_write", no_space)  # nor can a new status file
        code, output = invoke("train", "--profile", "tiny", "--slots", "1", "--retries", "1", B)
    assert code == 1
    assert f"FAILED {B}: disk full (no space left on device) while writing the job's files" in output
    status = JobStatus.read(run / "mprtune-status.json")
    assert status.state == "failed", "the failure is recorded in place when no new file fits"

    code, output = invoke("train", "--profile", "tiny", "--slots", "1", B)  # space freed
    assert code == 0 and "1 trained, 0 failed" in output, output
    assert JobStatus.read(run / "mprtune-status.json").state == "done"
    assert (run / "adapter_model.safetensors").read_bytes() == b"adapter"


def test_a_status_file_that_cannot_be_written_is_a_warning_not_a_crash(fake_project, monkeypatch) -> None:
    with monkeypatch.context() as full:
        full.setattr("mprtune.launch.jobs.atomic_write", no_space)
        code, output = invoke("train", "--profile", "tiny", "--slots", "1", B)
    assert code == 0, output  # the job itself had room: it finished
    assert f"Warning: could not write {fake_project.root / 'runs-tiny' / B / 'mprtune-status.json'}" in output
    assert (fake_project.root / "runs-tiny" / B / "adapter_model.safetensors").is_file()


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 2 MiB tmpfs (root only; skipped where mounting is not permitted)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"mount not permitted here: {proc.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write a ballast file until the disk is full."""
    ballast = folder / "ballast"
    with ballast.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def test_a_runs_dir_on_a_full_disk(fake_project, small_tmpfs) -> None:
    runs = small_tmpfs / "runs"
    runs.mkdir()
    ballast = fill(small_tmpfs)
    code, output = invoke("train", "--profile", "tiny", "--slots", "1", "--runs-dir", str(runs), B)
    assert code == 1, output
    assert f"FAILED {B}: disk full (no space left on device) while writing the job's files" in output
    assert f"Warning: could not write {runs / B / 'mprtune-status.json'}: No space left on device" in output
    code, output = invoke("status", "--profile", "tiny", "--runs-dir", str(runs), "--json")
    # Not one byte could be written: the state is rebuilt from the (empty) run folder, never "running".
    assert {row["variant"]: row["state"] for row in json.loads(output)}[B] == "pending"

    ballast.unlink()
    code, output = invoke("train", "--profile", "tiny", "--slots", "1", "--runs-dir", str(runs), B)
    assert code == 0 and "1 trained, 0 failed" in output, output


# --------------------------------------------------------------------------- damaged checkpoints


def test_the_plan_resumes_from_the_newest_complete_checkpoint_and_says_what_it_skipped(project) -> None:
    from test_decisions import complete_checkpoint

    run = project.root / "runs-tiny" / B
    for step in (4, 8, 12, 16):
        complete_checkpoint(run / f"checkpoint-{step}", step)
    truncate(run / "checkpoint-8" / "scheduler.pt")
    (run / "checkpoint-12" / "trainer_state.json").write_text('{"global_st')
    (run / "checkpoint-16" / "adapter_model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{")
    code, output = invoke("plan", "--profile", "tiny", B)
    decision = next(line for line in output.splitlines() if line.startswith(B))
    assert code == 0 and decision.split()[1] == "resume", decision
    assert decision.endswith(
        "resume from checkpoint-4; skipped checkpoint-16: adapter_model.safetensors is "
        "truncated; skipped checkpoint-12: trainer_state.json is damaged (JSONDecodeError); "
        "skipped checkpoint-8: scheduler.pt is missing or truncated"
    ), decision
    from mprtune.launch.resume import set_aside_damaged

    checkpoint, notes = set_aside_damaged(run)  # what the job does when it starts
    assert checkpoint == run / "checkpoint-4" and len(notes) == 3
    assert sorted(p.name for p in run.glob("*checkpoint-*")) == [
        "checkpoint-4",
        "damaged-checkpoint-12",
        "damaged-checkpoint-16",
        "damaged-checkpoint-8",
    ]


# --------------------------------------------------------------------------- real llamafactory-cli


def mprtune(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mprtune", *args], capture_output=True, text=True, **kwargs)


def own_tracebacks(stderr: str) -> list[str]:
    """Traceback lines printed by mprtune itself (a job's log tail is quoted indented under FAILED)."""
    return [line for line in stderr.splitlines() if "Traceback" in line and not line.startswith("    ")]


def unfinish(run: Path) -> None:
    """What a kill after the last checkpoint but before the final save leaves: checkpoints, no adapter."""
    for name in ("adapter_model.safetensors", "adapter_config.json", "train_results.json", "all_results.json"):
        (run / name).unlink(missing_ok=True)


def logged_steps(run: Path) -> list[int]:
    rows = [json.loads(line) for line in (run / "trainer_log.jsonl").read_text().splitlines() if line.strip()]
    return [row["current_steps"] for row in rows if row.get("loss") is not None]


@pytest.mark.slow
def test_resume_skips_a_damaged_newest_checkpoint_and_finishes(tiny_project) -> None:
    run = tiny_project.root / "runs-tiny" / A
    first = mprtune("train", "--profile", "tiny", "--slots", "1", A)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]

    damages = {
        "trainer_state.json": "trainer_state.json is damaged (JSONDecodeError)",  # a kill during a save
        "optimizer.pt": "optimizer.pt is missing or truncated",
    }  # a full disk during a save
    for damaged, why in damages.items():
        unfinish(run)
        truncate(run / "checkpoint-12" / damaged)
        before = len(logged_steps(run))
        result = mprtune("train", "--profile", "tiny", "--slots", "1", A)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"resume from checkpoint-8; skipped checkpoint-12: {why}" in result.stdout
        assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 12
        assert logged_steps(run)[before:] == [9, 10, 11, 12], "resumed after step 8, not from scratch"
        assert (run / "adapter_model.safetensors").is_file()
        from mprtune.launch.state import checkpoint_problem

        assert checkpoint_problem(run / "checkpoint-12") is None, "the rerun rewrote the damaged checkpoint"


@pytest.fixture
def tmpfs_runs(tmp_path: Path):
    """A 64 MiB tmpfs for a runs dir (root only; skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the injected-ENOSPC tests cover the same code)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"mount not permitted here: {proc.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_disk_that_fills_up_during_training_fails_the_job_and_the_rerun_completes(tiny_project, tmpfs_runs) -> None:
    text = tiny_project.matrix.read_text().replace("      max_steps: 12\n", "      max_steps: 40\n")
    tiny_project.write_matrix(text)
    runs = tmpfs_runs / "runs"
    run = runs / A
    from mprtune.launch.state import checkpoint_problem

    args = ("train", "--profile", "tiny", "--slots", "1", "--retries", "0", "--runs-dir", str(runs), A)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mprtune", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not (
        (run / "checkpoint-4").is_dir()
        and checkpoint_problem(run / "checkpoint-4") is None
        and (run / "checkpoint-4" / "rng_state.pth").is_file()
    ):
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before its first checkpoint"
        time.sleep(0.05)
    ballast = fill(tmpfs_runs)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert f"FAILED {A}: disk full (no space left on device" in err, err[-3000:]
    assert not own_tracebacks(err), err[-3000:]
    status = JobStatus.read(run / "mprtune-status.json")
    assert status is not None and status.state == "failed", "the failure is recorded although the disk is full"

    ballast.unlink()
    again = mprtune(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    decision = next(line for line in again.stdout.splitlines() if line.startswith(A))
    assert "resume from checkpoint-" in decision, decision
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 40
