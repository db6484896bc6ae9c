"""Check rendered files the way LLaMA-Factory 0.9.5 will read them, before anything launches.

Training/prediction YAMLs are parsed with HfArgumentParser over LLaMA-Factory's own argument
dataclasses (no model loading, none of get_train_args' side effects). That import pulls in torch
(~10 s), so it runs in a child process (`python -m mprtune.config.lfcheck`) and `mprtune render` itself
stays torch-free; verdicts are cached by file content and LLaMA-Factory version.

dataset_info.json needs no import: its entry keys are checked against the ones LLaMA-Factory
reads (data/parser.py), because it silently ignores any other key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mprtune.errors import show

DATASET_ENTRY_KEYS = {
    "file_name",
    "hf_hub_url",
    "ms_hub_url",
    "om_hub_url",
    "script_url",
    "cloud_file_name",
    "formatting",
    "ranking",
    "subset",
    "split",
    "folder",
    "num_samples",
    "columns",
    "tags",
}
DATASET_SOURCE_KEYS = ("file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
ALPACA_COLUMNS = {
    "prompt",
    "query",
    "response",
    "history",
    "system",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
    "tools",
    "messages",
}
FORMATTINGS = {"alpaca", "sharegpt", "openai"}
TAGS = {"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"}


def llamafactory_version() -> str | None:
    """The installed LLaMA-Factory version, from its dist-info folder name.

    importlib.metadata would cost ~20 ms of `render`'s start-up; a glob over sys.path costs ~1 ms.
    """
    import sys

    for entry in sys.path:
        for info in sorted(Path(entry or ".").glob("llamafactory-*.dist-info")):
            return info.name[len("llamafactory-") : -len(".dist-info")]
    return None


def check_dataset_info(
    text: str, label: str, data_dir: Path | None = None, used: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """(errors, warnings) for one dataset_info.json. Missing data files are warnings: prepare-data makes them.

    `used`: the datasets the variants train or evaluate on (None: all); only they must be on disk.
    """
    errors: list[str] = []
    missing: list[str] = []
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"{label}:{exc.lineno}: invalid JSON: {exc.msg}"], []
    for name, entry in info.items():
        if name.startswith("_"):
            continue
        if not isinstance(entry, dict):
            errors.append(f"{label}: {name}: expected an object, got {show(entry)}")
            continue
        for key in sorted(set(entry) - DATASET_ENTRY_KEYS):
            errors.append(
                f"{label}: {name}.{key}: LLaMA-Factory ignores this key "
                f"(it reads {', '.join(sorted(DATASET_ENTRY_KEYS))})"
            )
        if not any(key in entry for key in DATASET_SOURCE_KEYS):
            errors.append(f"{label}: {name}: needs one of {', '.join(DATASET_SOURCE_KEYS)}")
        if entry.get("formatting", "alpaca") not in FORMATTINGS:
            errors.append(f"{label}: {name}.formatting: expected one of {', '.join(sorted(FORMATTINGS))}")
        for column in sorted(set(entry.get("columns", {})) - ALPACA_COLUMNS):
            errors.append(f"{label}: {name}.columns.{column}: LLaMA-Factory ignores this column role")
        tags = entry.get("tags", {})
        for tag in sorted(set(tags if isinstance(tags, dict) else {}) - TAGS):
            errors.append(
                f"{label}: {name}.tags.{tag}: LLaMA-Factory ignores this tag (it reads {', '.join(sorted(TAGS))})"
            )
        file_name = entry.get("file_name")
        wanted = used is None or name in used
        if wanted and data_dir is not None and isinstance(file_name, str) and not (data_dir / file_name).exists():
            missing.append(name)
    warnings = (
        [
            f"{label}: {len(missing)} dataset(s) not prepared yet in {data_dir} ({', '.join(missing)}): "
            f"run `mprtune prepare-data TASK...`"
        ]
        if missing
        else []
    )
    return errors, warnings


def _cache_key(text: str, version: str) -> str:
    return hashlib.sha256(f"{version}\0{text}".encode()).hexdigest()


def check_yamls(files: dict[str, str], cache_file: Path | None = None) -> list[str]:
    """Problems LLaMA-Factory's parser finds in rendered YAMLs ({label: text}); [] when not installed."""
    version = llamafactory_version()
    if version is None or not files:
        return []
    cache: dict[str, bool] = {}
    if cache_file and cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    todo = {label: text for label, text in files.items() if not cache.get(_cache_key(text, version))}
    if not todo:
        return []
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "mprtune.config.lfcheck"],
        input=json.dumps(todo),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        verdicts: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return [f"LLaMA-Factory check could not run: {tail[0]}"]
    problems = [p for label in todo for p in verdicts.get(label, [])]
    if cache_file:
        for label, text in todo.items():
            if not verdicts.get(label):
                cache[_cache_key(text, version)] = True
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, sort_keys=True))
    return problems


def _parse_one(parser: Any, label: str, text: str, templates: set[str]) -> list[str]:
    import yaml

    args = yaml.safe_load(text)
    problems = []
    if args.get("template") not in templates:
        problems.append(f"{label}: template: unknown LLaMA-Factory template {show(args.get('template'))}")
    return problems + _parse_arguments(parser, label, args)


def _parse_arguments(parser: Any, label: str, args: dict[str, Any]) -> list[str]:
    try:
        parser.parse_dict(args, allow_extra_keys=False)
    except ValueError as exc:
        message = str(exc)
        if "bf16/gpu" in message and not args.get("use_cpu"):
            # This machine has no GPU; the file is meant for one. Validate everything else.
            return _parse_arguments(parser, label, {**args, "use_cpu": True})
        if "not used by the HfArgumentParser" in message:
            keys = message.split(":", 1)[1].strip()
            return [
                f"{label}: unknown LLaMA-Factory key(s) {keys}; check the spelling or remove them from mprtune.yaml"
            ]
        return [f"{label}: LLaMA-Factory rejects it: {message.splitlines()[0]}"]
    except (TypeError, KeyError) as exc:
        return [f"{label}: LLaMA-Factory rejects it: {exc}"]
    return []


def _main() -> None:
    import logging
    import os
    import sys

    os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
    logging.disable(logging.WARNING)
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import (
        DataArguments,
        FinetuningArguments,
        GeneratingArguments,
        ModelArguments,
        TrainingArguments,
    )
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, TrainingArguments, FinetuningArguments, GeneratingArguments)
    )
    files: dict[str, str] = json.loads(sys.stdin.read())
    verdicts = {label: _parse_one(parser, label, text, set(TEMPLATES)) for label, text in files.items()}
    print(json.dumps(verdicts))


if __name__ == "__main__":
    _main()
