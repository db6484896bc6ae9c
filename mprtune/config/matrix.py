"""The experiment matrix (mprtune.yaml): load, apply a profile, validate everything at once.

Validation never stops at the first problem: every section's check appends `key.path: what is
wrong` to one list (config/checks.py), and a single ConfigError carries them all.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from mprtune.config.checks import (
    DEEPSPEED_STAGES,
    PREDICT_RANGES,
    PREDICT_TYPES,
    RECIPE_RANGES,
    RECIPE_TYPES,
    SAFE_NAME,
    UNSAFE_NAME,
    WANDB_TYPES,
    Problems,
    did_you_mean,
    show,
)
from mprtune.config.entities import BaseModel, Dataset, Matrix, Task, Variant
from mprtune.config.sections import (
    parse_datasets,
    parse_hardware,
    parse_models,
    parse_slurm,
    parse_tasks,
    shown_name,
    too_long,
)
from mprtune.config.sweeps import Sweep, SweepOrigin, expand_sweeps
from mprtune.config.yamlfile import read_yaml
from mprtune.errors import ConfigError
from mprtune.paths import REFERENCE_PROFILE

TOP_LEVEL = (
    "wandb",
    "data_dir",
    "models",
    "datasets",
    "tasks",
    "recipe",
    "predict",
    "hardware",
    "slurm",
    "variants",
    "sweeps",
    "profiles",
)
PROFILE_KEYS = (
    "models",
    "recipe",
    "predict",
    "hardware",
    "data_dir",
    "variants",
    "sweeps",
    "wandb",
    "slurm",
    "datasets",
    "tasks",
)
VARIANT_KEYS = ("name", "model", "task")

__all__ = [
    "RECIPE_TYPES",
    "PREDICT_TYPES",
    "BaseModel",
    "Dataset",
    "Task",
    "Variant",
    "Matrix",
    "Sweep",
    "SweepOrigin",
    "load_matrix",
    "parse_matrix",
    "did_you_mean",
    "REFERENCE_PROFILE",
]


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
    overlay = profiles[profile] or {}
    merged = _deep_merge(raw, overlay)
    # `path` and `source` are two ways to say where a model comes from: a profile that gives one
    # replaces the other instead of merging into an entry that has both.
    models = overlay.get("models") if isinstance(overlay, dict) else None
    for name, model in (models or {}).items() if isinstance(models, dict) else ():
        if (
            isinstance(model, dict)
            and isinstance(merged.get("models"), dict)
            and isinstance(merged["models"].get(name), dict)
        ):
            for given, replaced in (("source", "path"), ("path", "source")):
                if given in model and replaced not in model:
                    merged["models"][name].pop(replaced, None)
    return merged


def _profile_data_dirs(raw: dict, profile: str) -> list[str]:
    """Where this profile's dataset registry goes (checked profiles: their shape is known good).

    Profiles that share the matrix's datasets share one registry text, written into each of their
    data dirs; a profile with datasets of its own keeps its registry in its own data dir alone.
    """
    profiles = {n: o for n, o in (raw.get("profiles") or {}).items() if isinstance(o, dict)}
    own = profiles.get(profile, {})
    if "datasets" in own:
        found = [own.get("data_dir", raw.get("data_dir", "data"))]
    else:
        found = [raw.get("data_dir", "data")]
        found += [o.get("data_dir") for o in profiles.values() if "datasets" not in o]
    return [d for d in found if isinstance(d, str) and d and "\0" not in d and not too_long(d)]


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
            elif (
                not isinstance(value, (str, int, float, bool, type(None)))
                or isinstance(value, float)
                and not math.isfinite(value)
                or isinstance(value, int)
                and abs(value) >= 2**63
            ):
                p.add(f"{path}.extra_args.{key}", f"expected a string, a finite number or a boolean, got {show(value)}")


def _one_prompt_format(p: Problems, path: str, extra: dict, task: Task, model: BaseModel) -> bool:
    """The prompt format is said once, where it applies to training, prediction and serving alike."""
    ok = True
    if "template" in extra:
        p.add(
            f"{path}.extra_args.template",
            f"set the chat template on the model (models.{model.name}.template): it must be the same for "
            f"training, prediction and serving",
        )
        ok = False
    if "default_system" in extra and task.system is not None:
        p.add(
            f"{path}.extra_args.default_system",
            f"tasks.{task.name}.system is set too: give the system prompt once, as tasks.{task.name}.system",
        )
        ok = False
    return ok


def _recipe_or_empty(recipe: dict) -> dict:
    """A checked recipe with a usable extra_args mapping (a wrongly typed one was already reported)."""
    return {**recipe, "extra_args": recipe["extra_args"] if isinstance(recipe.get("extra_args"), dict) else {}}


def _build_variant(
    p: Problems,
    path: str,
    spec: dict,
    models: dict[str, BaseModel],
    tasks: dict[str, Task],
    recipe: dict,
    raw: dict,
    origin: SweepOrigin | None = None,
) -> Variant | None:
    """One `variants:` entry (hand-written or expanded from a sweep) checked and merged over the recipe."""
    name = spec.get("name")
    p.check_mapping(path, spec, {**RECIPE_TYPES, "name": str, "model": str, "task": str}, VARIANT_KEYS, RECIPE_RANGES)
    if isinstance(name, str) and not SAFE_NAME.match(name):
        p.add(f"{path}.name", UNSAFE_NAME)
    model, task = spec.get("model"), spec.get("task")
    if isinstance(model, str) and model not in models and model not in (raw.get("models") or {}):
        p.add(f"{path}.model", f"unknown model {show(model)}" + did_you_mean(model, models))
    if isinstance(task, str) and task not in tasks and task not in (raw.get("tasks") or {}):
        p.add(f"{path}.task", f"unknown task {show(task)}" + did_you_mean(task, tasks))
    overrides = _recipe_or_empty({k: v for k, v in spec.items() if k not in VARIANT_KEYS and k in RECIPE_TYPES})
    _check_recipe_values(p, path, overrides)
    if not (isinstance(name, str) and SAFE_NAME.match(name) and model in models and task in tasks):
        return None
    base = models[model]  # the model's width, unless the variant says
    width = {k: v for k, v in (("gpus", base.gpus), ("nodes", base.nodes)) if v}
    merged = {**recipe, **width, **overrides, "extra_args": {**recipe["extra_args"], **overrides["extra_args"]}}
    if not _one_prompt_format(p, path, merged["extra_args"], tasks[task], models[model]):
        return None
    return Variant(name, models[model], tasks[task], merged, origin)


def _parse_variants(
    p: Problems, value: Any, models: dict[str, BaseModel], tasks: dict[str, Task], recipe: dict, raw: dict
) -> dict[str, Variant]:
    if value is None:
        return {}
    if not isinstance(value, list):
        p.add("variants", f"expected a list of variants, got {type(value).__name__}")
        return {}
    variants: dict[str, Variant] = {}
    for index, spec in enumerate(value):
        if not isinstance(spec, dict):
            p.add(f"variants[{index}]", f"expected a mapping with name, model, task, got {show(spec)}")
            continue
        name = spec.get("name")
        path = f"variants.{shown_name(name)}" if isinstance(name, str) else f"variants[{index}]"
        before = len(p.items)
        variant = _build_variant(p, path, spec, models, tasks, recipe, raw)
        if isinstance(name, str) and (
            name in variants or any(isinstance(v, dict) and v.get("name") == name for v in value[:index])
        ):
            p.add(f"{path}.name", "duplicate variant name")
        elif variant is not None and len(p.items) == before:
            variants[variant.name] = variant
    return variants


def _parse_sweeps(
    p: Problems,
    raw: dict,
    variants: dict[str, Variant],
    models: dict[str, BaseModel],
    tasks: dict[str, Task],
    recipe: dict,
) -> dict[str, Sweep]:
    """Expand `sweeps:` into variants added to `variants` (after the hand-written ones, in grid order)."""
    given = raw.get("variants")
    listed: list[Any] = given if isinstance(given, list) else []
    hand_written = {v["name"]: v for v in listed if isinstance(v, dict) and isinstance(v.get("name"), str)}
    named = lambda section: set(raw[section]) if isinstance(raw.get(section), dict) else set()  # noqa: E731
    sweeps, expanded = expand_sweeps(
        p, raw.get("sweeps"), hand_written, set(variants), named("models") | set(models), named("tasks") | set(tasks)
    )
    taken = {name: f"variants.{name}" for name in hand_written}
    for item in expanded:
        name = item.spec["name"]
        if name in taken:
            p.add(
                item.path,
                f"variant name {name!r} is already taken by {taken[name]}; set `prefix:` on sweeps.{item.origin.sweep}",
            )
            continue
        taken[name] = item.path
        variant = _build_variant(p, item.path, item.spec, models, tasks, recipe, raw, item.origin)
        if variant is not None:
            variants[name] = variant
    return sweeps


def parse_matrix(raw: Any, source: Path, profile: str = REFERENCE_PROFILE) -> Matrix:
    """Validate a parsed mprtune.yaml and build the Matrix; raises one ConfigError with all problems."""
    if not isinstance(raw, dict):
        raise ConfigError([f"expected a mapping at the top level, got {type(raw).__name__}"], str(source))
    p = Problems()
    _check_profiles(p, raw.get("profiles"))
    if p.items:
        raise ConfigError(p.items, str(source))
    data_dirs = _profile_data_dirs(raw, profile)
    profiles = raw.get("profiles") or {}
    own_data = tuple(n for n, o in profiles.items() if isinstance(o, dict) and "datasets" in o)
    try:
        raw = apply_profile(raw, profile)
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(source)) from None
    for key in raw:
        if key not in TOP_LEVEL:
            p.add(str(key), f"unknown key (known: {', '.join(TOP_LEVEL)})")
    for key in ("models", "datasets", "tasks", "recipe"):
        if key not in raw:
            p.add(key, "missing required section")
    if "variants" not in raw and "sweeps" not in raw:
        p.add("variants", "missing required section (or a `sweeps:` section)")
    wandb = p.check_mapping("wandb", raw.get("wandb", {}), WANDB_TYPES)
    data_dir = raw.get("data_dir", "data")
    if not isinstance(data_dir, str) or not data_dir or "\0" in data_dir or too_long(data_dir):
        p.add("data_dir", f"expected a folder path, got {show(data_dir)}")
        data_dir = "data"
    models = parse_models(p, raw)
    datasets = parse_datasets(p, raw)
    tasks = parse_tasks(p, raw, datasets)
    recipe = _recipe_or_empty(p.check_mapping("recipe", raw.get("recipe", {}), RECIPE_TYPES, ranges=RECIPE_RANGES))
    _check_recipe_values(p, "recipe", recipe)
    predict = p.check_mapping("predict", raw.get("predict", {}), PREDICT_TYPES, ranges=PREDICT_RANGES)
    gpus, slots = parse_hardware(p, raw)
    slurm = parse_slurm(p, raw)
    variants = _parse_variants(p, raw.get("variants"), models, tasks, recipe, raw)
    sweeps = _parse_sweeps(p, raw, variants, models, tasks, recipe)
    if p.items:
        raise ConfigError(p.items, str(source))
    return Matrix(
        source=source,
        profile=profile,
        data_dir=data_dir,
        wandb_project=wandb.get("project", "mprtune"),
        models=models,
        datasets=datasets,
        tasks=tasks,
        predict=dict(predict),
        gpus=gpus,
        slots=slots,
        variants=variants,
        slurm=slurm,
        sweeps=sweeps,
        data_dirs=tuple(dict.fromkeys([data_dir, *data_dirs])),
        own_data_profiles=own_data,
    )


def load_matrix(path: Path, profile: str = REFERENCE_PROFILE) -> Matrix:
    return parse_matrix(read_yaml(path), path, profile)
