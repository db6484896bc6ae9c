"""Parsing the matrix's named sections (models, datasets, tasks, hardware, slurm), each problem with its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mprtune.config.checks import (
    HARDWARE_RANGES,
    HARDWARE_TYPES,
    MODEL_RANGES,
    MODEL_TYPES,
    NAME_MAX,
    SAFE_NAME,
    SLURM_RANGES,
    SLURM_TYPES,
    TASK_RANGES,
    TASK_TYPES,
    UNSAFE_NAME,
    Problems,
    show,
)
from mprtune.config.datasets import parse_dataset
from mprtune.config.entities import BaseModel, Dataset, Task
from mprtune.config.model_source import ModelSource, parse_source, source_problems
from mprtune.paths import STATE_DIR
from mprtune.tasks import KindError, TaskKind, resolve_kind


def shown_name(name: Any) -> str:
    """A name as part of a key path: cut like any quoted value, so a 200 kB name gives a short line."""
    return name if isinstance(name, str) and len(name) <= 80 else show(name)


def too_long(path: str) -> bool:
    return any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in Path(path).parts)


def named_section(p: Problems, section: str, value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        p.add(section, f"expected a mapping of names, got {type(value).__name__}")
        return []
    out = []
    for name, spec in value.items():
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            p.add(f"{section}.{shown_name(name)}", UNSAFE_NAME)
            continue
        out.append((name, spec))
    return out


def model_source(p: Problems, name: str, spec: dict) -> tuple[dict, ModelSource | None]:
    """The entry with `path` derived from its `source` (hub id, local folder, .mprtune/models/<name>)."""
    if not isinstance(spec.get("source"), dict):
        return spec, None
    if "path" in spec:
        p.add(f"models.{name}", "give either path or source, not both")
    problems = source_problems(f"models.{name}.source", spec["source"])
    p.items.extend(problems)
    if problems:
        return spec, None
    weights = parse_source(spec["source"])
    path = weights.location if weights.kind in ("hub", "path") else f"{STATE_DIR}/models/{name}"
    return {**spec, "path": path}, weights


def parse_models(p: Problems, raw: dict) -> dict[str, BaseModel]:
    models = {}
    for name, spec in named_section(p, "models", raw.get("models")):
        has_source = isinstance(spec, dict) and isinstance(spec.get("source"), dict)
        required = ("template", "params") if has_source else ("path", "template", "params")
        spec, weights = model_source(
            p, name, p.check_mapping(f"models.{name}", spec, MODEL_TYPES, required, MODEL_RANGES)
        )
        if all(p.valid(spec, MODEL_TYPES, MODEL_RANGES, k) for k in ("path", "template", "params")):
            seed = spec.get("tiny_seed")
            models[name] = BaseModel(
                name,
                spec["path"],
                spec["template"],
                float(spec["params"]),
                seed if p.valid(spec, MODEL_TYPES, MODEL_RANGES, "tiny_seed") else None,
                str(spec["note"]) if isinstance(spec.get("note"), str) else "",
                weights,
                spec["gpus"] if p.valid(spec, MODEL_TYPES, MODEL_RANGES, "gpus") else None,
                spec["nodes"] if p.valid(spec, MODEL_TYPES, MODEL_RANGES, "nodes") else None,
            )
    return models


def parse_datasets(p: Problems, raw: dict) -> dict[str, Dataset]:
    datasets = {}
    for name, spec in named_section(p, "datasets", raw.get("datasets")):
        dataset = parse_dataset(p, name, spec)
        if dataset is not None:
            datasets[name] = dataset
    return datasets


def _task_kind(p: Problems, name: str, spec: dict) -> type[TaskKind] | None:
    kind = spec.get("kind")
    if not isinstance(kind, str):
        return None
    try:
        return resolve_kind(kind)
    except KindError as exc:
        p.add(f"tasks.{name}.kind", str(exc))
        return None


def parse_tasks(p: Problems, raw: dict, datasets: dict[str, Dataset]) -> dict[str, Task]:
    tasks = {}
    for name, spec in named_section(p, "tasks", raw.get("tasks")):
        kind = _task_kind(p, name, spec) if isinstance(spec, dict) else None
        own = dict(kind.option_types) if kind else {}
        types = {**TASK_TYPES, **own}
        required: tuple[str, ...] = ("kind", "train", "eval", "cutoff_len", "train_tokens")
        if kind is None or kind.prompt_required:
            required = ("kind", "prompt", *required[1:])
        before = len(p.items)
        spec = p.check_mapping(f"tasks.{name}", spec, types, required, TASK_RANGES)
        for role in ("train", "eval"):
            refs = spec.get(role)
            if isinstance(refs, list):
                if not refs:
                    p.add(f"tasks.{name}.{role}", "needs at least one dataset")
                for ref in refs:
                    if not isinstance(ref, str) or ref not in datasets and ref not in (raw.get("datasets") or {}):
                        p.add(f"tasks.{name}.{role}", f"unknown dataset {show(ref)} (define it under datasets)")
        options = {k: v for k, v in spec.items() if k in own}
        if kind is not None and len(p.items) == before:
            for key, message in kind.check_options(options):
                p.add(f"tasks.{name}.{key}", message)
        if (
            kind is not None
            and len(p.items) == before
            and all(p.valid(spec, TASK_TYPES, TASK_RANGES, k) for k in required)
            and all(isinstance(r, str) for r in spec["train"] + spec["eval"])
        ):
            tasks[name] = Task(
                name,
                spec["kind"],
                spec.get("prompt", ""),
                tuple(spec["train"]),
                tuple(spec["eval"]),
                spec["cutoff_len"],
                spec["train_tokens"],
                spec.get("system"),
                kind(options, task=name),
            )
    return tasks


def parse_hardware(p: Problems, raw: dict) -> tuple[tuple[int, ...], int]:
    hardware = p.check_mapping("hardware", raw.get("hardware", {}), HARDWARE_TYPES, ranges=HARDWARE_RANGES)
    gpus = hardware.get("gpus", [])
    if not isinstance(gpus, list):
        gpus = []
    elif not all(isinstance(g, int) and not isinstance(g, bool) and 0 <= g < 4096 for g in gpus):
        p.add("hardware.gpus", f"expected a list of GPU ids (integers >= 0), got {show(gpus)}")
        gpus = []
    elif len(set(gpus)) != len(gpus):
        p.add("hardware.gpus", f"duplicate GPU id in {show(gpus)}")
    slots = hardware.get("slots", len(gpus) or 1)
    if not p.valid({"slots": slots}, HARDWARE_TYPES, HARDWARE_RANGES, "slots"):
        slots = 1
    return tuple(gpus), slots


def parse_slurm(p: Problems, raw: dict) -> dict[str, Any]:
    slurm = p.check_mapping("slurm", raw.get("slurm", {}) or {}, SLURM_TYPES, ranges=SLURM_RANGES)
    for key in ("setup", "sbatch_args"):
        if isinstance(slurm.get(key), list) and not all(isinstance(x, str) for x in slurm[key]):
            p.add(f"slurm.{key}", "expected a list of strings")
    return dict(slurm)
