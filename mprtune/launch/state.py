"""What a job folder says about its job: complete, resumable, failed... rebuilt from files alone.

Liveness comes from the backend that ran the job (`backends.for_status`), which proves the job is
still ours before calling it running.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.io import Warn, quiet
from mprtune.launch import backends
from mprtune.launch.jobs import DONE, FAILED, INTERRUPTED, PENDING, RUNNING, JobPaths, JobStatus

# What Trainer.train(resume_from_checkpoint=...) reads from a LoRA checkpoint (torch.save files are zips).
CHECKPOINT_ZIPS = ("optimizer.pt", "scheduler.pt")
ADAPTER_WEIGHTS = "adapter_model.safetensors"
LOW_DISK_BYTES = 1 << 20  # less free space than this on a run's disk after a failure: the disk is full


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_train_results(folder: Path, warn: Warn = quiet) -> dict[str, Any]:
    """train_results.json as a mapping ({} when absent); a damaged one is reported through `warn`.

    LLaMA-Factory writes it after the adapter, so a damaged copy (a kill or a full disk during its
    write) still means a complete adapter: the run stays finished, only its summary is lost.
    """
    path = folder / "train_results.json"
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        warn(
            f"{path}: damaged ({type(exc).__name__}); the run counts as finished (its adapter was saved "
            f"first) but its runtime and throughput are unknown"
        )
        return {}
    if not isinstance(data, dict):
        warn(
            f"{path}: damaged (expected a JSON object, got {type(data).__name__}); the run counts as finished "
            f"but its runtime and throughput are unknown"
        )
        return {}
    return data


def derive_state(paths: JobPaths, kind: str, warn: Warn = quiet) -> str:
    """done > running (provably ours) > failed (retries spent) > interrupted (checkpoint or cut) > pending."""
    status = JobStatus.read(paths.status, warn)  # read first: a finished run's damaged file is named too
    if paths.is_complete(kind):
        if kind == "train":
            read_train_results(paths.folder, warn)
        return DONE
    if status and status.state == RUNNING and backends.for_status(status).alive(status):
        return RUNNING
    if status and status.state == FAILED:
        return FAILED
    if paths.checkpoints() or (status and status.state in (RUNNING, INTERRUPTED)):
        return INTERRUPTED
    return PENDING


def _safetensors_problem(path: Path) -> str | None:
    """A safetensors file is whole when its JSON header parses and the last tensor ends at the file's end."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size - 8:
                return f"{path.name} is truncated"
            header = json.loads(handle.read(length))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return f"{path.name} is damaged"
    ends = [
        entry["data_offsets"][1]
        for key, entry in header.items()
        if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry
    ]
    if 8 + length + max(ends, default=0) > size:
        return f"{path.name} is truncated"
    return None


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (what a kill during a save or a full disk leaves)."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "trainer_state.json is missing"
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        return f"trainer_state.json is damaged ({type(exc).__name__})"
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        return "trainer_state.json has no global_step"
    deepspeed = (folder / "latest").is_file()  # DeepSpeed keeps optimizer state in global_stepN/ instead
    for name in () if deepspeed else CHECKPOINT_ZIPS:
        if not zipfile.is_zipfile(folder / name):
            return f"{name} is missing or truncated"
    return _safetensors_problem(folder / ADAPTER_WEIGHTS)


@dataclass(frozen=True)
class ResumePoint:
    checkpoint: Path | None  # the newest complete checkpoint
    skipped: list[tuple[Path, str]]  # newer checkpoints that cannot be resumed from, with why


def resume_point(paths: JobPaths) -> ResumePoint:
    skipped: list[tuple[Path, str]] = []
    for folder in reversed(paths.checkpoints()):
        problem = checkpoint_problem(folder)
        if problem is None:
            return ResumePoint(folder, skipped)
        skipped.append((folder, problem))
    return ResumePoint(None, skipped)


def free_bytes(folder: Path) -> int | None:
    """Free space on the disk holding `folder` (None when it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def classify_failure(returncode: int | None, log_tail: str, free: int | None = None) -> str:
    """A short reason users can act on, quoting the error line of the log where there is one.

    `free` is the free space on the run folder's disk: a job that died on a full disk often could
    not even write its traceback, so a (nearly) full disk is named even when the log is silent.
    """
    text = log_tail.lower()
    error_line = next(
        (line.strip() for line in reversed(log_tail.splitlines()) if "error" in line.lower() and line.strip()), ""
    )
    quoted = f": {error_line[:200]}" if error_line else ""
    if "out of memory" in text or "outofmemoryerror" in text:
        return "CUDA out of memory: lower per_device_train_batch_size or cutoff_len" + quoted
    if "no space left on device" in text or "errno 28" in text or free is not None and free < LOW_DISK_BYTES:
        left = f", {free} bytes free" if free is not None and free < LOW_DISK_BYTES else ""
        return f"disk full (no space left on device{left}): free space, then rerun; the run resumes" + quoted
    if returncode is not None and returncode < 0:
        return f"killed by signal {-returncode}"
    if "not used by the hfargumentparser" in text or "valueerror" in text and "argument" in text:
        return "config error: LLaMA-Factory rejected the config" + quoted
    if (
        ("filenotfounderror" in text and "dataset" in text)
        or "undefined dataset" in text
        or "dataset_info" in text
        and ("cannot find" in text or "cannot open" in text)
        or "valueerror: file " in text
        and "not found" in text
    ):
        return "missing data: run `mprtune prepare-data` (or `mprtune render`, which writes dataset_info.json)" + quoted
    if "keyerror" in text and ("converter.py" in text or "align_dataset" in text or "loader.py" in text):
        key = next((line.strip() for line in reversed(log_tail.splitlines()) if "KeyError" in line), "")
        return (
            f"data error: a column the dataset declares is not in its rows ({key[:120]}): check the dataset's "
            f"formatting and columns in the matrix; `mprtune plan` names the rows"
        )
    return f"exit code {returncode}" + quoted


# Failures that come back the same on every attempt: retrying only burns GPU time.
DETERMINISTIC = ("config error", "missing data", "data error")


def retryable(reason: str | None) -> bool:
    """Whether relaunching could help (a crash, a kill, a full disk freed) rather than fail the same way."""
    return not (reason or "").startswith(DETERMINISTIC)
