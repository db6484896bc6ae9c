"""Sweeps: a base variant (or a model + task) times axes of recipe keys, expanded into plain variants.

    sweeps:
      lr_rank:
        variant: llama32_3b_grammar_lora      # or `model:` + `task:`
        axes:                                 # cartesian product of the axes
          lora_rank: [8, 16]
        zip:                                  # keys that move together: each group is ONE axis
          - {learning_rate: [1.0e-4, 2.0e-4], warmup_ratio: [0.03, 0.1]}
        max_steps: 500                        # any recipe key: fixed for every variant of the sweep

Each grid point becomes an ordinary variant named `<prefix>__<token>_<token>...` (prefix: the base
variant's name, or `<model>_<task>_<sweep>`; one token per swept key, sorted by key, e.g.
`llama32_3b_grammar_lora__lr1e-4_r8_wu0.03`). A name depends only on the prefix and the point's own
values, never on the other values of its axes, so adding a value to an axis later only adds
variants: the finished ones keep their names and run folders. Names longer than MAX_NAME keep a
readable head and end in a hash of the full name.

This module checks the section and expands it; config/matrix.py builds the variants from the
expanded entries exactly as it builds hand-written ones.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mprtune.config.checks import (
    DEEPSPEED_STAGES,
    RECIPE_RANGES,
    RECIPE_TYPES,
    SAFE_NAME,
    UNSAFE_NAME,
    Problems,
    did_you_mean,
    range_problem,
    show,
    type_name,
    type_ok,
)

SWEEP_KEYS = ("variant", "model", "task", "prefix", "axes", "zip")
EXTRA_PREFIX = "extra_args."  # an axis over a LLaMA-Factory key mprtune does not know: extra_args.<key>
MAX_NAME = 64  # longer names end in a hash: run folders, W&B run names and Slurm job names stay short
MAX_GRID = 1000  # more variants than this from one sweep is almost certainly a typo
# Short tokens for the keys people sweep; any other key is spelled out.
ABBREVIATIONS = {
    "learning_rate": "lr",
    "lora_rank": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "drop",
    "warmup_ratio": "wu",
    "weight_decay": "wd",
    "num_train_epochs": "ep",
    "max_steps": "steps",
    "per_device_train_batch_size": "bs",
    "gradient_accumulation_steps": "ga",
    "cutoff_len": "len",
    "lr_scheduler_type": "sched",
    "lora_target": "target",
    "max_samples": "n",
    "deepspeed": "ds",
}


@dataclass(frozen=True)
class SweepOrigin:
    """Which sweep a variant came from, and its values on the sweep's axes."""

    sweep: str
    values: tuple[tuple[str, Any], ...]  # (recipe key, value), keys in axis order

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class Sweep:
    name: str
    base: str  # the base variant's name, or "<model>/<task>"
    axes: tuple[tuple[str, ...], ...]  # the keys of each axis: one key, or a zipped group
    variants: tuple[str, ...]  # expanded names, in grid order (first axis slowest)

    @property
    def keys(self) -> list[str]:
        return [key for axis in self.axes for key in axis]


@dataclass(frozen=True)
class SweepVariant:
    """One grid point, shaped like a `variants:` entry, for matrix.py to build."""

    path: str  # where problems with this variant are reported
    spec: dict[str, Any]  # name, model, task and recipe overrides
    origin: SweepOrigin


# --- names ------------------------------------------------------------------------------------


def number_token(value: int | float) -> str:
    """The shortest exact spelling: 8, 0.03, 1e-4 (not 0.0001), 2.5e-5."""
    if isinstance(value, int) or value == int(value) and abs(value) < 1e15:
        return str(int(value))
    plain = repr(value)
    scientific = format(Decimal(plain), "e").replace("e+", "e")
    return plain if "e" not in plain and len(plain) <= len(scientific) else scientific


def value_token(key: str, value: Any) -> str:
    """One key's part of a variant name: `lr1e-4`, `r8`, `packing` / `no-packing`, `sched-cosine`."""
    short = ABBREVIATIONS.get(key, key.removeprefix(EXTRA_PREFIX))
    if isinstance(value, bool):
        return short if value else f"no-{short}"
    if isinstance(value, (int, float)):
        return f"{short}{number_token(value)}"
    return f"{short}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', str(value)).strip('-') or 'empty'}"


def variant_name(prefix: str, values: dict[str, Any]) -> str:
    """`<prefix>__<tokens sorted by key>`, cut to MAX_NAME with a hash of the full name when longer."""
    name = f"{prefix}__" + "_".join(value_token(key, values[key]) for key in sorted(values))
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('_-.')}_{digest}"


# --- checks -----------------------------------------------------------------------------------


def _value_problem(key: str, value: Any) -> str | None:
    """Why `value` cannot be a value of recipe key `key`, else None."""
    if key.startswith(EXTRA_PREFIX):
        if isinstance(value, (str, bool, int)) or isinstance(value, float) and value == value:
            return None
        return f"expected a string, number or boolean, got {show(value)}"
    if not type_ok(value, RECIPE_TYPES[key]):
        return f"expected {type_name(RECIPE_TYPES[key])}, got {show(value)}"
    if key in RECIPE_RANGES and (problem := range_problem(value, RECIPE_RANGES[key])):
        return problem
    if key == "deepspeed" and value not in DEEPSPEED_STAGES:
        return f"expected one of {', '.join(DEEPSPEED_STAGES)}, got {show(value)}"
    return None


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"an axis is a recipe key, got {show(key)}"
    if key.startswith(EXTRA_PREFIX):
        return None if SAFE_NAME.match(key[len(EXTRA_PREFIX) :]) else f"unsafe LLaMA-Factory key {key!r}"
    if key == "extra_args" or key not in RECIPE_TYPES:
        return (
            "not a recipe key"
            + did_you_mean(key, sorted(k for k in RECIPE_TYPES if k != "extra_args"))
            + f" (other LLaMA-Factory keys: {EXTRA_PREFIX}<key>)"
        )
    return None


def _check_axis(p: Problems, path: str, key: str, values: Any) -> list[Any] | None:
    """One key's list of values, every value checked; None when unusable."""
    if not isinstance(values, list) or not values:
        p.add(path, f"expected a non-empty list of values, got {show(values)}")
        return None
    good = True
    tokens: dict[str, Any] = {}
    for index, value in enumerate(values):
        problem = _value_problem(key, value)
        if problem:
            p.add(f"{path}[{index}]", problem)
            good = False
            continue
        token = value_token(key, value)
        if token in tokens:
            p.add(
                f"{path}[{index}]",
                f"same value as [{tokens[token]}] (name token {token!r}); values of an axis must differ",
            )
            good = False
        tokens.setdefault(token, index)
    return values if good else None


Axis = tuple[tuple[str, ...], list[tuple[Any, ...]]]  # (keys, points): one key, or a zipped group


class _Claims:
    """Each swept key belongs to one axis and is not also fixed by the sweep."""

    def __init__(self, p: Problems, path: str, spec: dict) -> None:
        self.p, self.path, self.spec = p, path, spec
        self.seen: dict[str, str] = {}

    def column(self, where: str, key: Any, values: Any) -> list[Any] | None:
        """A checked list of values for `key`, or None (problems reported at `where`)."""
        if (problem := _key_problem(key)) is not None:
            self.p.add(where, problem)
            return None
        checked = _check_axis(self.p, where, key, values)
        if checked is None:
            return None
        if key in self.seen:
            self.p.add(where, f"{key} is already swept at {self.seen[key]}; a key belongs to one axis")
            return None
        if key in self.spec and key in RECIPE_TYPES:
            self.p.add(where, f"{key} is also fixed at {self.path}.{key}; sweep it or fix it, not both")
            return None
        self.seen[key] = where
        return checked


def _zip_group(p: Problems, where: str, group: Any, claims: _Claims) -> Axis | None:
    if not isinstance(group, dict) or not group:
        p.add(where, f"expected a mapping of recipe key -> list of values, got {show(group)}")
        return None
    columns = [(key, claims.column(f"{where}.{key}", key, values)) for key, values in group.items()]
    if any(values is None for _, values in columns):
        return None
    lengths = {len(values or []) for _, values in columns}
    if len(lengths) > 1:
        p.add(
            where,
            "zipped keys need lists of the same length, got "
            + ", ".join(f"{key}: {len(values or [])}" for key, values in columns),
        )
        return None
    return tuple(key for key, _ in columns), list(zip(*(values or [] for _, values in columns), strict=True))


def _parse_axes(p: Problems, path: str, spec: dict) -> list[Axis] | None:
    """One axis per `axes` entry and one per `zip` group; None when any is unusable."""
    claims = _Claims(p, path, spec)
    raw_axes, raw_zip = spec.get("axes", {}), spec.get("zip", [])
    good = True
    if not isinstance(raw_axes, dict):
        p.add(f"{path}.axes", f"expected a mapping of recipe key -> list of values, got {show(raw_axes)}")
        raw_axes, good = {}, False
    if not isinstance(raw_zip, list):
        p.add(f"{path}.zip", f"expected a list of mappings (keys whose values move together), got {show(raw_zip)}")
        raw_zip, good = [], False
    axes: list[Axis] = []
    for key, values in raw_axes.items():
        checked = claims.column(f"{path}.axes.{key}", key, values)
        if checked is None:
            good = False
        else:
            axes.append(((key,), [(value,) for value in checked]))
    for number, group in enumerate(raw_zip):
        axis = _zip_group(p, f"{path}.zip[{number}]", group, claims)
        if axis is None:
            good = False
        else:
            axes.append(axis)
    if good and not axes:
        p.add(path, "a sweep needs at least one axis (`axes:` or `zip:`)")
        good = False
    return axes if good else None


def _base(
    p: Problems,
    path: str,
    name: str,
    spec: dict,
    hand_written: dict[str, dict],
    built: set[str],
    models: Any,
    tasks: Any,
) -> tuple[str, dict[str, Any], str] | None:
    """(base label, the `variants:`-shaped entry the grid starts from, default prefix)."""
    base = spec.get("variant")
    if base is not None:
        if "model" in spec or "task" in spec:
            p.add(path, "give either `variant:` or `model:` + `task:`, not both")
            return None
        if not isinstance(base, str) or base not in hand_written:
            p.add(f"{path}.variant", f"unknown variant {show(base)}" + did_you_mean(str(base), hand_written))
            return None
        if base not in built:  # its own problems are reported at variants.<base>: no echo per grid point
            return None
        return base, dict(hand_written[base]), base
    model, task = spec.get("model"), spec.get("task")
    if model is None or task is None:
        p.add(path, "needs `variant: <name>` or both `model:` and `task:`")
        return None
    ok = True
    for key, value, known in (("model", model, models), ("task", task, tasks)):
        if not isinstance(value, str) or value not in known:
            p.add(f"{path}.{key}", f"unknown {key} {show(value)}" + did_you_mean(str(value), sorted(known)))
            ok = False
    return (f"{model}/{task}", {"model": model, "task": task}, f"{model}_{task}_{name}") if ok else None


def _points(axes: list[Axis]) -> list[tuple[tuple[str, Any], ...]]:
    """Every grid point as ((key, value), ...) in axis order, first axis slowest."""
    return [
        tuple(
            (key, value)
            for (keys, _), point in zip(axes, combo, strict=True)
            for key, value in zip(keys, point, strict=True)
        )
        for combo in itertools.product(*(points for _, points in axes))
    ]


def _with_values(
    base: dict[str, Any], fixed: dict[str, Any], values: tuple[tuple[str, Any], ...], name: str
) -> dict[str, Any]:
    """The base entry, then the sweep's fixed keys, then the point's values (extra_args merged)."""
    extra = {**(base.get("extra_args") or {}), **(fixed.get("extra_args") or {})}
    spec = {**base, **fixed}
    for key, value in values:
        if key.startswith(EXTRA_PREFIX):
            extra[key[len(EXTRA_PREFIX) :]] = value
        else:
            spec[key] = value
    spec["name"] = name
    if extra:
        spec["extra_args"] = extra
    return spec


def expand_sweeps(
    p: Problems, value: Any, hand_written: dict[str, dict], built: set[str], models: Any, tasks: Any
) -> tuple[dict[str, Sweep], list[SweepVariant]]:
    """Check the `sweeps:` section and expand it.

    `hand_written`: the `variants:` entries by name; `built`: the names of those that are valid;
    `models`, `tasks`: the names a `model:` + `task:` sweep may use.
    """
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        p.add("sweeps", f"expected a mapping of sweep names, got {type(value).__name__}")
        return {}, []
    sweeps: dict[str, Sweep] = {}
    expanded: list[SweepVariant] = []
    types = {
        **RECIPE_TYPES,
        **{key: str for key in SWEEP_KEYS if key not in ("axes", "zip")},
        "axes": dict,
        "zip": list,
    }
    for name, spec in value.items():
        path = f"sweeps.{name}"
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            p.add(f"sweeps.{show(name) if not isinstance(name, str) else name}", UNSAFE_NAME)
            continue
        if not isinstance(spec, dict):
            p.add(path, f"expected a mapping with variant (or model + task) and axes, got {show(spec)}")
            continue
        before = len(p.items)
        p.check_mapping(path, {k: v for k, v in spec.items() if k not in ("axes", "zip")}, types, ranges=RECIPE_RANGES)
        if isinstance(spec.get("deepspeed"), str) and spec["deepspeed"] not in DEEPSPEED_STAGES:
            p.add(f"{path}.deepspeed", f"expected one of {', '.join(DEEPSPEED_STAGES)}, got {show(spec['deepspeed'])}")
        prefix = spec.get("prefix")
        if isinstance(prefix, str) and not SAFE_NAME.match(prefix):
            p.add(f"{path}.prefix", UNSAFE_NAME)
        axes = _parse_axes(p, path, spec)
        base = _base(p, path, name, spec, hand_written, built, models, tasks)
        if axes is None or base is None or len(p.items) > before:
            continue
        size = 1
        for _, points in axes:
            size *= len(points)
        if size > MAX_GRID:
            p.add(path, f"expands to {size} variants (more than {MAX_GRID}); shorten the axes or split the sweep")
            continue
        label, base_spec, default_prefix = base
        fixed = {k: v for k, v in spec.items() if k in RECIPE_TYPES}
        names = []
        for values in _points(axes):
            variant = variant_name(prefix or default_prefix, dict(values))
            names.append(variant)
            expanded.append(
                SweepVariant(
                    f"{path}[{variant}]", _with_values(base_spec, fixed, values, variant), SweepOrigin(name, values)
                )
            )
        sweeps[name] = Sweep(name, label, tuple(keys for keys, _ in axes), tuple(names))
    return sweeps, expanded
