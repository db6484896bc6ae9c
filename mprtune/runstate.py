"""What a job folder says about its job: complete, resumable, failed... rebuilt from files alone."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mprtune.jobs import DONE, FAILED, INTERRUPTED, PENDING, RUNNING, JobPaths, JobStatus
from mprtune.local_executor import pid_alive

# Files LLaMA-Factory writes last; their presence means the job finished.
COMPLETE_FILES = {
    "train": ("train_results.json", "adapter_model.safetensors"),
    "predict": ("generated_predictions.jsonl", "predict_results.json"),
    "export": ("config.json",),
}


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def is_complete(folder: Path, kind: str) -> bool:
    return all((folder / name).is_file() for name in COMPLETE_FILES[kind])


def derive_state(paths: JobPaths, kind: str) -> str:
    """done > running (live pid) > failed (retries spent) > interrupted (has a checkpoint or was cut) > pending."""
    if is_complete(paths.folder, kind):
        return DONE
    status = JobStatus.read(paths.status)
    if status and status.state == RUNNING and status.backend == "local" and pid_alive(status.pid):
        return RUNNING
    if status and status.state == RUNNING and status.backend == "slurm":
        from mprtune.slurm import job_active

        if job_active(status.job_id):
            return RUNNING
    if status and status.state == FAILED:
        return FAILED
    if paths.latest_checkpoint() is not None or (status and status.state in (RUNNING, INTERRUPTED)):
        return INTERRUPTED
    return PENDING


@dataclass(frozen=True)
class Progress:
    step: int | None
    total_steps: int | None
    loss: float | None
    remaining: str | None
    elapsed: str | None


def read_progress(trainer_log: Path) -> Progress:
    """The last logged step of LLaMA-Factory's trainer_log.jsonl (one JSON line per logging step)."""
    last_loss = None
    last: dict = {}
    try:
        with trainer_log.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line being written
                last = row
                if row.get("loss") is not None:
                    last_loss = float(row["loss"])
    except OSError:
        return Progress(None, None, None, None, None)
    return Progress(last.get("current_steps"), last.get("total_steps"), last_loss,
                    last.get("remaining_time"), last.get("elapsed_time"))


def loss_curve(trainer_log: Path) -> list[tuple[int, float]]:
    points = []
    try:
        for line in trainer_log.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("loss") is not None and row.get("current_steps") is not None:
                points.append((int(row["current_steps"]), float(row["loss"])))
    except OSError:
        pass
    return points


def classify_failure(returncode: int | None, log_tail: str) -> str:
    """A short reason users can act on, from the exit status and the end of the logs."""
    text = log_tail.lower()
    if "out of memory" in text or "outofmemoryerror" in text:
        return "CUDA out of memory: lower per_device_train_batch_size or cutoff_len"
    if returncode is not None and returncode < 0:
        return f"killed by signal {-returncode}"
    if "not used by the hfargumentparser" in text or "valueerror" in text and "argument" in text:
        return "config error: LLaMA-Factory rejected the config (see the log tail)"
    if ("filenotfounderror" in text or "cannot find" in text or "no such file" in text
            or "dataset_info" in text or "undefined dataset" in text):
        return "missing data: run `mprtune prepare-data` (see the log tail)"
    return f"exit code {returncode}"
