"""The experiment matrix (mprtune.yaml): load, apply a profile, validate everything at once.

Validation never stops at the first problem: every check appends `key.path: what is wrong`
to one list, and a single ConfigError carries them all.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mprtune.errors import ConfigError
from mprtune.model_store import MODELS_DIR, ModelSource, parse_source, source_problems

REFERENCE_PROFILE = "reference"
TASK_KINDS = ("grammar", "paraphrase", "knowledge")
DEEPSPEED_STAGES = ("zero2", "zero3")
# Folder names and torchrun arguments: LLaMA-Factory re-splits arguments on spaces under torchrun.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Recipe keys mprtune knows the type of. Anything else goes under `extra_args`, which
# LLaMA-Factory's own parser checks at render time.
RECIPE_TYPES: dict[str, type | tuple[type, ...]] = {
    "stage": str,
    "finetuning_type": str,
    "lora_rank": int,
    "lora_alpha": int,
    "lora_dropout": (int, float),
    "lora_target": str,
    "learning_rate": (int, float),
    "lr_scheduler_type": str,
    "warmup_ratio": (int, float),
    "weight_decay": (int, float),
    "per_device_train_batch_size": int,
    "gradient_accumulation_steps": int,
    "num_train_epochs": (int, float),
    "max_steps": int,
    "max_samples": int,
    "bf16": bool,
    "fp16": bool,
    "logging_steps": int,
    "save_steps": int,
    "save_total_limit": int,
    "plot_loss": bool,
    "seed": int,
    "report_to": str,
    "cutoff_len": int,
    "packing": bool,
    "neat_packing": bool,
    "preprocessing_num_workers": int,
    "dataloader_num_workers": int,
    "flash_attn": str,
    "deepspeed": str,  # one of DEEPSPEED_STAGES, rendered into a JSON file
    "disable_gradient_checkpointing": bool,
    "use_cpu": bool,
    "additional_target": str,
    "extra_args": dict,
}
PREDICT_TYPES: dict[str, type | tuple[type, ...]] = {
    "per_device_eval_batch_size": int,
    "max_new_tokens": int,
    "do_sample": bool,
    "cutoff_len": int,
}
MODEL_TYPES: dict[str, type | tuple[type, ...]] = {
    "path": str,
    "template": str,
    "params": (int, float),
    "tiny_seed": int,
    "source": dict,  # where the weights come from (mprtune.model_store); replaces `path`
}
TASK_TYPES: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "prompt": str,
    "train": list,
    "eval": list,
    "cutoff_len": int,
    "train_tokens": int,
}
DATASET_TYPES: dict[str, type | tuple[type, ...]] = {"file": str, "rows": int}
HARDWARE_TYPES: dict[str, type | tuple[type, ...]] = {"gpus": list, "slots": int}
WANDB_TYPES: dict[str, type | tuple[type, ...]] = {"project": str}
SLURM_TYPES: dict[str, type | tuple[type, ...]] = {
    "partition": str, "time": str, "account": str, "cpus_per_task": int, "mem": str,
    "sbatch_args": list, "setup": list,  # setup: shell lines (module load, conda activate) run before the job
}
TOP_LEVEL = ("wandb", "data_dir", "models", "datasets", "tasks", "recipe", "predict", "hardware", "slurm",
             "variants", "profiles")
PROFILE_KEYS = ("models", "recipe", "predict", "hardware", "data_dir", "variants", "wandb", "slurm")
VARIANT_KEYS = ("name", "model", "task")


@dataclass(frozen=True)
class BaseModel:
    name: str
    path: str
    template: str
    params: float
    tiny_seed: int | None = None  # set: build a tiny random Llama at `path` when missing
    source: ModelSource | None = None  # set: `path` is derived from it (hub id, local folder, materialised folder)


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
            known = ", ".join(self.variants)
            raise ConfigError([f"unknown variant {n!r} (known: {known})" for n in unknown])
        return [self.variants[n] for n in (names or list(self.variants))]


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: ~8x faster
    """safe_load that reports duplicate mapping keys instead of silently keeping the last."""

    duplicates: list[str]


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            loader.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads `5e-5` and `3.21e9` as strings; users mean numbers (YAML 1.2 agrees).
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: Path) -> Any:
    """Parse YAML safely; syntax errors and duplicate keys become a ConfigError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(["file not found; create it or pass --config PATH"], str(path)) from None
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}invalid YAML: {problem}"], str(path)) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates, str(path))
    return data


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "a mapping"}
    if isinstance(expected, tuple):
        return "a number" if set(expected) == {int, float} else " or ".join(names[t] for t in expected)
    return names[expected]


def _type_ok(value: Any, expected: type | tuple[type, ...]) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # YAML `on`/`yes` become booleans: never accept them as numbers
    return isinstance(value, kinds)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def check_mapping(self, path: str, value: Any, types: dict[str, Any],
                      required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {value!r}")
            return {}
        for key in required:
            if key not in value:
                self.add(f"{path}.{key}", "missing required key")
        for key, item in value.items():
            if key not in types:
                self.add(f"{path}.{key}", f"unknown key (known: {', '.join(sorted(types))})")
            elif not _type_ok(item, types[key]):
                self.add(f"{path}.{key}", f"expected {_type_name(types[key])}, got {item!r}")
        return value


def apply_profile(raw: dict, profile: str) -> dict:
    """The same matrix with a profile's values laid over it (a deep merge, variants replaced)."""
    if profile == REFERENCE_PROFILE:
        return raw
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict) or profile not in profiles:
        known = ", ".join([REFERENCE_PROFILE, *(profiles if isinstance(profiles, dict) else [])])
        raise ConfigError([f"profiles.{profile}: unknown profile (known: {known})"])
    overlay = profiles[profile] or {}
    merged = _deep_merge(raw, overlay)
    # `path` and `source` are two ways to say where a model comes from: a profile that gives one
    # replaces the other instead of merging into an entry that has both.
    for name, model in (overlay.get("models") or {}).items() if isinstance(overlay, dict) else ():
        if isinstance(model, dict) and isinstance(merged["models"].get(name), dict):
            for given, replaced in (("source", "path"), ("path", "source")):
                if given in model and replaced not in model:
                    merged["models"][name].pop(replaced, None)
    return merged


def _check_profiles(p: _Problems, profiles: Any) -> None:
    """Every profile's shape is checked whichever profile is active, so `render --check` catches it."""
    if profiles is None:
        return
    if not isinstance(profiles, dict):
        p.add("profiles", f"expected a mapping of profile names, got {type(profiles).__name__}")
        return
    for name, overlay in profiles.items():
        if not isinstance(overlay, dict):
            p.add(f"profiles.{name}", f"expected a mapping, got {overlay!r}")
            continue
        for key in overlay:
            if key not in PROFILE_KEYS:
                p.add(f"profiles.{name}.{key}", f"a profile may set only {', '.join(PROFILE_KEYS)}")


def parse_matrix(raw: Any, source: Path, profile: str = REFERENCE_PROFILE) -> Matrix:
    """Validate a parsed mprtune.yaml and build the Matrix; raises one ConfigError with all problems."""
    if not isinstance(raw, dict):
        raise ConfigError([f"expected a mapping at the top level, got {type(raw).__name__}"], str(source))
    p = _Problems()
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
    if not isinstance(data_dir, str) or not data_dir:
        p.add("data_dir", f"expected a folder path, got {data_dir!r}")
        data_dir = "data"

    models: dict[str, BaseModel] = {}
    for name, spec in _named_section(p, "models", raw.get("models")):
        has_source = isinstance(spec, dict) and isinstance(spec.get("source"), dict)
        spec = p.check_mapping(f"models.{name}", spec, MODEL_TYPES,
                               required=("template", "params") if has_source else ("path", "template", "params"))
        weights = None
        if has_source:
            if "path" in spec:
                p.add(f"models.{name}", "give either path or source, not both")
            problems = source_problems(f"models.{name}.source", spec["source"])
            p.items.extend(problems)
            if not problems:
                weights = parse_source(spec["source"])
                spec = {**spec, "path": weights.location if weights.kind in ("hub", "path") else f"{MODELS_DIR}/{name}"}
        if all(_type_ok(spec.get(k), MODEL_TYPES[k]) for k in ("path", "template", "params")):
            models[name] = BaseModel(name, spec["path"], spec["template"], float(spec["params"]),
                                     spec.get("tiny_seed") if isinstance(spec.get("tiny_seed"), int) else None,
                                     weights)

    datasets: dict[str, Dataset] = {}
    for name, spec in _named_section(p, "datasets", raw.get("datasets")):
        spec = p.check_mapping(f"datasets.{name}", spec, DATASET_TYPES, required=("file",))
        file = spec.get("file")
        if isinstance(file, str):
            if Path(file).is_absolute() or ".." in Path(file).parts:
                p.add(f"datasets.{name}.file", f"must be a relative path inside the data dir, got {file!r}")
            datasets[name] = Dataset(name, file)

    tasks: dict[str, Task] = {}
    for name, spec in _named_section(p, "tasks", raw.get("tasks")):
        spec = p.check_mapping(f"tasks.{name}", spec, TASK_TYPES,
                               required=("kind", "prompt", "train", "eval", "cutoff_len", "train_tokens"))
        if spec.get("kind") is not None and spec.get("kind") not in TASK_KINDS:
            p.add(f"tasks.{name}.kind", f"expected one of {', '.join(TASK_KINDS)}, got {spec.get('kind')!r}")
        for role in ("train", "eval"):
            refs = spec.get(role)
            if isinstance(refs, list):
                if not refs:
                    p.add(f"tasks.{name}.{role}", "needs at least one dataset")
                for ref in refs:
                    if ref not in datasets and ref not in (raw.get("datasets") or {}):
                        p.add(f"tasks.{name}.{role}", f"unknown dataset {ref!r} (define it under datasets)")
        if all(_type_ok(spec.get(k), TASK_TYPES[k]) for k in TASK_TYPES) and spec["kind"] in TASK_KINDS:
            tasks[name] = Task(name, spec["kind"], spec["prompt"], tuple(spec["train"]), tuple(spec["eval"]),
                               spec["cutoff_len"], spec["train_tokens"])

    recipe = p.check_mapping("recipe", raw.get("recipe", {}), RECIPE_TYPES)
    _check_recipe_values(p, "recipe", recipe)
    predict = p.check_mapping("predict", raw.get("predict", {}), PREDICT_TYPES)
    hardware = p.check_mapping("hardware", raw.get("hardware", {}), HARDWARE_TYPES)
    gpus = hardware.get("gpus", [])
    if isinstance(gpus, list) and not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus):
        p.add("hardware.gpus", f"expected a list of GPU ids (integers >= 0), got {gpus!r}")
        gpus = []
    if isinstance(gpus, list) and len(set(gpus)) != len(gpus):
        p.add("hardware.gpus", f"duplicate GPU id in {gpus!r}")
    slots = hardware.get("slots", len(gpus) if isinstance(gpus, list) and gpus else 1)
    if not isinstance(slots, int) or slots < 1:
        p.add("hardware.slots", f"expected an integer >= 1, got {slots!r}")
        slots = 1

    slurm = p.check_mapping("slurm", raw.get("slurm", {}) or {}, SLURM_TYPES)
    for key in ("setup", "sbatch_args"):
        if isinstance(slurm.get(key), list) and not all(isinstance(x, str) for x in slurm[key]):
            p.add(f"slurm.{key}", "expected a list of strings")
    variants = _parse_variants(p, raw.get("variants"), models, tasks, recipe, raw)
    if p.items:
        raise ConfigError(p.items, str(source))
    return Matrix(source=source, profile=profile, data_dir=data_dir,
                  wandb_project=wandb.get("project", "mprtune"), models=models, datasets=datasets,
                  tasks=tasks, predict=dict(predict), gpus=tuple(gpus) if isinstance(gpus, list) else (),
                  slots=slots, variants=variants, slurm=dict(slurm))


def _named_section(p: _Problems, section: str, value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        p.add(section, f"expected a mapping of names, got {type(value).__name__}")
        return []
    out = []
    for name, spec in value.items():
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            p.add(f"{section}.{name}", "unsafe name: use letters, digits, '_', '-', '.' (no spaces, '/', quotes)")
            continue
        out.append((name, spec))
    return out


def _check_recipe_values(p: _Problems, path: str, recipe: dict) -> None:
    for key in ("lora_rank", "lora_alpha", "per_device_train_batch_size", "gradient_accumulation_steps",
                "logging_steps", "save_steps", "cutoff_len", "max_steps", "save_total_limit"):
        value = recipe.get(key)
        if _type_ok(value, int) and value < 1:
            p.add(f"{path}.{key}", f"expected an integer >= 1, got {value!r}")
    lr = recipe.get("learning_rate")
    if _type_ok(lr, (int, float)) and not 0 < lr < 1:
        p.add(f"{path}.learning_rate", f"expected a number in (0, 1), got {lr!r}")
    stage = recipe.get("deepspeed")
    if isinstance(stage, str) and stage not in DEEPSPEED_STAGES:
        p.add(f"{path}.deepspeed", f"expected one of {', '.join(DEEPSPEED_STAGES)}, got {stage!r}")
    if recipe.get("bf16") is True and recipe.get("fp16") is True:
        p.add(f"{path}", "bf16 and fp16 are both true; pick one")


def _parse_variants(p: _Problems, value: Any, models: dict[str, BaseModel], tasks: dict[str, Task],
                    recipe: dict, raw: dict) -> dict[str, Variant]:
    if value is None:
        return {}
    if not isinstance(value, list):
        p.add("variants", f"expected a list of variants, got {type(value).__name__}")
        return {}
    variants: dict[str, Variant] = {}
    seen: set[str] = set()
    types = {**RECIPE_TYPES, "name": str, "model": str, "task": str}
    for index, spec in enumerate(value):
        if not isinstance(spec, dict):
            p.add(f"variants[{index}]", f"expected a mapping with name, model, task, got {spec!r}")
            continue
        name = spec.get("name")
        path = f"variants.{name}" if isinstance(name, str) else f"variants[{index}]"
        p.check_mapping(path, spec, types, required=VARIANT_KEYS)
        if isinstance(name, str):
            if not SAFE_NAME.match(name):
                p.add(f"{path}.name", "unsafe name: use letters, digits, '_', '-', '.' (no spaces, '/', quotes)")
            if name in seen:
                p.add(f"{path}.name", "duplicate variant name")
            seen.add(name)
        model, task = spec.get("model"), spec.get("task")
        if isinstance(model, str) and model not in models and model not in (raw.get("models") or {}):
            p.add(f"{path}.model", f"unknown model {model!r} (known: {', '.join(models)})")
        if isinstance(task, str) and task not in tasks and task not in (raw.get("tasks") or {}):
            p.add(f"{path}.task", f"unknown task {task!r} (known: {', '.join(tasks)})")
        overrides = {k: v for k, v in spec.items() if k not in VARIANT_KEYS and k in RECIPE_TYPES}
        _check_recipe_values(p, path, overrides)
        if isinstance(name, str) and SAFE_NAME.match(name) and model in models and task in tasks:
            merged = {**recipe, **overrides}
            merged["extra_args"] = {**recipe.get("extra_args", {}), **overrides.get("extra_args", {})}
            variants[name] = Variant(name, models[model], tasks[task], merged)
    return variants


def load_matrix(path: Path, profile: str = REFERENCE_PROFILE) -> Matrix:
    return parse_matrix(read_yaml(path), path, profile)
