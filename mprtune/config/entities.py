"""What a parsed experiment matrix is made of: base models, datasets, tasks, variants, the matrix itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprtune.config.checks import did_you_mean
from mprtune.config.model_source import ModelSource
from mprtune.config.sweeps import Sweep, SweepOrigin
from mprtune.errors import ConfigError, show


@dataclass(frozen=True)
class BaseModel:
    name: str
    path: str
    template: str
    params: float
    tiny_seed: int | None = None  # set: build a tiny random Llama at `path` when missing
    note: str = ""
    source: ModelSource | None = None  # set: `path` is derived from it (hub id, local folder, materialised folder)
    gpus: int | None = None  # GPUs its variants get unless they say otherwise
    nodes: int | None = None  # Slurm nodes its variants span unless they say otherwise

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
    recipe: dict[str, Any]  # shared recipe + this variant's overrides, LLaMA-Factory keys (+ mprtune's `gpus`)
    sweep: SweepOrigin | None = None  # set when a sweep expanded it: the sweep and its axis values

    @property
    def gpus(self) -> int:
        """GPUs (or CPU slots) one job of this variant holds at once; > 1 runs under torchrun (DDP)."""
        return int(self.recipe.get("gpus", 1))

    @property
    def nodes(self) -> int:
        """Slurm nodes one job spans, `gpus` on each (one torchrun per node); > 1 only on Slurm."""
        return int(self.recipe.get("nodes", 1))


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
    sweeps: dict[str, Sweep] = field(default_factory=dict)

    def select(self, names: list[str] | tuple[str, ...]) -> list[Variant]:
        unknown = [n for n in names if n not in self.variants]
        if unknown:
            raise ConfigError([f"unknown variant {show(n)}" + did_you_mean(n, self.variants) for n in unknown])
        return [self.variants[n] for n in (names or list(self.variants))]
