"""The experiment matrix (mprtune.yaml): load, apply a profile, validate everything at once.

Validation never stops at the first problem: every section's check appends `key.path: what is
wrong` to one list (config/checks.py), and a single ConfigError carries them all.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprtune.config.checks import (DATASET_TYPES, HARDWARE_RANGES, HARDWARE_TYPES, MODEL_RANGES, MODEL_TYPES,
                                   PREDICT_RANGES, PREDICT_TYPES, RECIPE_RANGES, RECIPE_TYPES, SLURM_RANGES,
                                   SLURM_TYPES, TASK_RANGES, TASK_TYPES, WANDB_TYPES, Problems, show, type_ok)
from mprtune.config.yamlfile import read_yaml
from mprtune.errors import ConfigError
from mprtune.paths import REFERENCE_PROFILE
from mprtune.tasks import TASK_KINDS

DEEPSPEED_STAGES = ("zero2", "zero3")
# Folder names and torchrun arguments: LLaMA-Factory re-splits arguments on spaces under torchrun.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
UNSAFE_NAME = "unsafe name: use up to 100 letters, digits, '_', '-', '.' (no spaces, '/', quotes)"
NAME_MAX = 255  # bytes per folder or file name on Linux file systems
TOP_LEVEL = ("wandb", "data_dir", "models", "datasets", "tasks", "recipe", "predict", "hardware", "slurm",
             "variants", "profiles")
PROFILE_KEYS = ("models", "recipe", "predict", "hardware", "data_dir", "variants", "wandb", "slurm")
VARIANT_KEYS = ("name", "model", "task")

__all__ = ["RECIPE_TYPES", "PREDICT_TYPES", "BaseModel", "Dataset", "Task", "Variant", "Matrix", "load_matrix",
           "parse_matrix", "did_you_mean", "REFERENCE_PROFILE"]


@dataclass(frozen=True)
class BaseModel:
    name: str
    path: str
    template: str
    params: float
    tiny_seed: int | None = None  # set: build a tiny random Llama at `path` when missing
    note: str = ""

    @property
    def is_random(self) -> bool:
        """Random weights (a tiny test model): its scores prove plumbing, never that fine-tuning helped."""
        return self.tiny_seed is not None


@dataclass(frozen=True)
class Dataset:
    name: str
    file: str  # relative to the data dir


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    prompt: str
    train: tuple[str, ...]
    eval: tuple[str, ...]
    cutoff_len: int
    train_tokens: int  # planning estimate until prepared data is on disk


@dataclass(frozen=True)
class Variant:
    name: str
    model: BaseModel
    task: Task
    recipe: dict[str, Any]  # shared recipe + this variant's overrides, LLaMA-Factory keys


@dataclass(frozen=True)
class Matrix:
    source: Path
    profile: str
    data_dir: str
    wandb_project: str
    models: dict[str, BaseModel]
    datasets: dict[str, Dataset]
    tasks: dict[str, Task]
    predict: dict[str, Any]
    gpus: tuple[int, ...]
    slots: int
    variants: dict[str, Variant] = field(default_factory=dict)
    slurm: dict[str, Any] = field(default_factory=dict)

    def select(self, names: list[str] | tuple[str, ...]) -> list[Variant]:
        unknown = [n for n in names if n not in self.variants]
        if unknown:
            raise ConfigError([f"unknown variant {show(n)}" + did_you_mean(n, self.variants) for n in unknown])
        return [self.variants[n] for n in (names or list(self.variants))]


def did_you_mean(name: str, known: Any) -> str:
    """`; did you mean 'x'?` for a near miss, else the list of known names (short lists only)."""
    import difflib

    known = [str(k) for k in known]
    close = difflib.get_close_matches(str(name), known, n=2, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f" (known: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})"


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_profile(raw: dict, profile: str) -> dict:
    """The same matrix with a profile's values laid over it (a deep merge, variants replaced)."""
    if profile == REFERENCE_PROFILE:
        return raw
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict) or profile not in profiles:
        known = [REFERENCE_PROFILE, *(profiles if isinstance(profiles, dict) else [])]
        raise ConfigError([f"--profile: unknown profile {show(profile)}" + did_you_mean(profile, known)])
    return _deep_merge(raw, profiles[profile] or {})


def _check_profiles(p: Problems, profiles: Any) -> None:
    """Every profile's shape is checked whichever profile is active, so `render --check` catches it."""
    if profiles is None:
        return
    if not isinstance(profiles, dict):
        p.add("profiles", f"expected a mapping of profile names, got {type(profiles).__name__}")
        return
    for name, overlay in profiles.items():
        if not isinstance(overlay, dict):
            p.add(f"profiles.{name}", f"expected a mapping, got {show(overlay)}")
            continue
        for key in overlay:
            if key not in PROFILE_KEYS:
                p.add(f"profiles.{name}.{key}", f"a profile may set only {', '.join(PROFILE_KEYS)}")


def _label(name: Any) -> str:
    """A name as part of a key path: cut like any quoted value, so a 200 kB name gives a short line."""
    return name if isinstance(name, str) and len(name) <= 80 else show(name)


def _too_long(path: str) -> bool:
    return any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in Path(path).parts)


def _named_section(p: Problems, section: str, value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        p.add(section, f"expected a mapping of names, got {type(value).__name__}")
        return []
    out = []
    for name, spec in value.items():
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            p.add(f"{section}.{_label(name)}", UNSAFE_NAME)
            continue
        out.append((name, spec))
    return out


def _parse_models(p: Problems, raw: dict) -> dict[str, BaseModel]:
    models = {}
    for name, spec in _named_section(p, "models", raw.get("models")):
        spec = p.check_mapping(f"models.{name}", spec, MODEL_TYPES, ("path", "template", "params"), MODEL_RANGES)
        if all(p.valid(spec, MODEL_TYPES, MODEL_RANGES, k) for k in ("path", "template", "params")):
            seed = spec.get("tiny_seed")
            models[name] = BaseModel(name, spec["path"], spec["template"], float(spec["params"]),
                                     seed if p.valid(spec, MODEL_TYPES, MODEL_RANGES, "tiny_seed") else None,
                                     spec.get("note") if isinstance(spec.get("note"), str) else "")
    return models


def _parse_datasets(p: Problems, raw: dict) -> dict[str, Dataset]:
    datasets = {}
    for name, spec in _named_section(p, "datasets", raw.get("datasets")):
        spec = p.check_mapping(f"datasets.{name}", spec, DATASET_TYPES, required=("file",))
        file = spec.get("file")
        if isinstance(file, str):
            if not file or Path(file).is_absolute() or ".." in Path(file).parts or "\0" in file or _too_long(file):
                p.add(f"datasets.{name}.file", f"must be a relative path inside the data dir, got {show(file)}")
            datasets[name] = Dataset(name, file)
    return datasets


def _parse_tasks(p: Problems, raw: dict, datasets: dict[str, Dataset]) -> dict[str, Task]:
    tasks = {}
    for name, spec in _named_section(p, "tasks", raw.get("tasks")):
        spec = p.check_mapping(f"tasks.{name}", spec, TASK_TYPES,
                               ("kind", "prompt", "train", "eval", "cutoff_len", "train_tokens"), TASK_RANGES)
        if spec.get("kind") is not None and spec.get("kind") not in TASK_KINDS:
            p.add(f"tasks.{name}.kind", f"expected one of {', '.join(TASK_KINDS)}, got {show(spec.get('kind'))}")
        for role in ("train", "eval"):
            refs = spec.get(role)
            if isinstance(refs, list):
                if not refs:
                    p.add(f"tasks.{name}.{role}", "needs at least one dataset")
                for ref in refs:
                    if not isinstance(ref, str) or ref not in datasets and ref not in (raw.get("datasets") or {}):
                        p.add(f"tasks.{name}.{role}", f"unknown dataset {show(ref)} (define it under datasets)")
        if all(p.valid(spec, TASK_TYPES, TASK_RANGES, k) for k in TASK_TYPES) and spec["kind"] in TASK_KINDS \
                and all(isinstance(r, str) for r in spec["train"] + spec["eval"]):
            tasks[name] = Task(name, spec["kind"], spec["prompt"], tuple(spec["train"]), tuple(spec["eval"]),
                               spec["cutoff_len"], spec["train_tokens"])
    return tasks


def _parse_hardware(p: Problems, raw: dict) -> tuple[tuple[int, ...], int]:
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


def _parse_slurm(p: Problems, raw: dict) -> dict[str, Any]:
    slurm = p.check_mapping("slurm", raw.get("slurm", {}) or {}, SLURM_TYPES, ranges=SLURM_RANGES)
    for key in ("setup", "sbatch_args"):
        if isinstance(slurm.get(key), list) and not all(isinstance(x, str) for x in slurm[key]):
            p.add(f"slurm.{key}", "expected a list of strings")
    return dict(slurm)


def _check_recipe_values(p: Problems, path: str, recipe: dict) -> None:
    """Cross-key and enumerated values; types and ranges are checked with the mapping."""
    stage = recipe.get("deepspeed")
    if isinstance(stage, str) and stage not in DEEPSPEED_STAGES:
        p.add(f"{path}.deepspeed", f"expected one of {', '.join(DEEPSPEED_STAGES)}, got {show(stage)}")
    if recipe.get("bf16") is True and recipe.get("fp16") is True:
        p.add(f"{path}", "bf16 and fp16 are both true; pick one")
    extra = recipe.get("extra_args")
    if isinstance(extra, dict):
        for key, value in extra.items():
            if not isinstance(key, str) or not SAFE_NAME.match(key):
                p.add(f"{path}.extra_args", f"argument names are LLaMA-Factory keys, got {show(key)}")
            elif not isinstance(value, (str, int, float, bool, type(None))) or isinstance(value, float) and \
                    not math.isfinite(value) or isinstance(value, int) and abs(value) >= 2**63:
                p.add(f"{path}.extra_args.{key}", f"expected a string, a finite number or a boolean, got {show(value)}")


def _recipe_or_empty(recipe: dict) -> dict:
    """A checked recipe with a usable extra_args mapping (a wrongly typed one was already reported)."""
    return {**recipe, "extra_args": recipe["extra_args"] if isinstance(recipe.get("extra_args"), dict) else {}}


def _parse_variants(p: Problems, value: Any, models: dict[str, BaseModel], tasks: dict[str, Task],
                    recipe: dict, raw: dict) -> dict[str, Variant]:
    if value is None:
        return {}
    if not isinstance(value, list):
        p.add("variants", f"expected a list of variants, got {type(value).__name__}")
        return {}
    variants: dict[str, Variant] = {}
    types = {**RECIPE_TYPES, "name": str, "model": str, "task": str}
    for index, spec in enumerate(value):
        if not isinstance(spec, dict):
            p.add(f"variants[{index}]", f"expected a mapping with name, model, task, got {show(spec)}")
            continue
        name = spec.get("name")
        path = f"variants.{_label(name)}" if isinstance(name, str) else f"variants[{index}]"
        p.check_mapping(path, spec, types, VARIANT_KEYS, RECIPE_RANGES)
        if isinstance(name, str):
            if not SAFE_NAME.match(name):
                p.add(f"{path}.name", UNSAFE_NAME)
            if name in variants or any(isinstance(v, dict) and v.get("name") == name for v in value[:index]):
                p.add(f"{path}.name", "duplicate variant name")
        model, task = spec.get("model"), spec.get("task")
        if isinstance(model, str) and model not in models and model not in (raw.get("models") or {}):
            p.add(f"{path}.model", f"unknown model {show(model)}" + did_you_mean(model, models))
        if isinstance(task, str) and task not in tasks and task not in (raw.get("tasks") or {}):
            p.add(f"{path}.task", f"unknown task {show(task)}" + did_you_mean(task, tasks))
        overrides = _recipe_or_empty({k: v for k, v in spec.items() if k not in VARIANT_KEYS and k in RECIPE_TYPES})
        _check_recipe_values(p, path, overrides)
        if isinstance(name, str) and SAFE_NAME.match(name) and model in models and task in tasks:
            merged = {**recipe, **overrides, "extra_args": {**recipe["extra_args"], **overrides["extra_args"]}}
            variants[name] = Variant(name, models[model], tasks[task], merged)
    return variants


def parse_matrix(raw: Any, source: Path, profile: str = REFERENCE_PROFILE) -> Matrix:
    """Validate a parsed mprtune.yaml and build the Matrix; raises one ConfigError with all problems."""
    if not isinstance(raw, dict):
        raise ConfigError([f"expected a mapping at the top level, got {type(raw).__name__}"], str(source))
    p = Problems()
    _check_profiles(p, raw.get("profiles"))
    if p.items:
        raise ConfigError(p.items, str(source))
    try:
        raw = apply_profile(raw, profile)
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(source)) from None
    for key in raw:
        if key not in TOP_LEVEL:
            p.add(str(key), f"unknown key (known: {', '.join(TOP_LEVEL)})")
    for key in ("models", "datasets", "tasks", "recipe", "variants"):
        if key not in raw:
            p.add(key, "missing required section")
    wandb = p.check_mapping("wandb", raw.get("wandb", {}), WANDB_TYPES)
    data_dir = raw.get("data_dir", "data")
    if not isinstance(data_dir, str) or not data_dir or "\0" in data_dir or _too_long(data_dir):
        p.add("data_dir", f"expected a folder path, got {show(data_dir)}")
        data_dir = "data"
    models = _parse_models(p, raw)
    datasets = _parse_datasets(p, raw)
    tasks = _parse_tasks(p, raw, datasets)
    recipe = _recipe_or_empty(p.check_mapping("recipe", raw.get("recipe", {}), RECIPE_TYPES, ranges=RECIPE_RANGES))
    _check_recipe_values(p, "recipe", recipe)
    predict = p.check_mapping("predict", raw.get("predict", {}), PREDICT_TYPES, ranges=PREDICT_RANGES)
    gpus, slots = _parse_hardware(p, raw)
    slurm = _parse_slurm(p, raw)
    variants = _parse_variants(p, raw.get("variants"), models, tasks, recipe, raw)
    if p.items:
        raise ConfigError(p.items, str(source))
    return Matrix(source=source, profile=profile, data_dir=data_dir,
                  wandb_project=wandb.get("project", "mprtune"), models=models, datasets=datasets,
                  tasks=tasks, predict=dict(predict), gpus=gpus, slots=slots, variants=variants, slurm=slurm)


def load_matrix(path: Path, profile: str = REFERENCE_PROFILE) -> Matrix:
    return parse_matrix(read_yaml(path), path, profile)
