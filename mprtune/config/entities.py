"""What a parsed experiment matrix is made of: base models, datasets, tasks, variants, the matrix itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprtune.config.checks import did_you_mean
from mprtune.config.model_source import ModelSource
from mprtune.config.sweeps import Sweep, SweepOrigin
from mprtune.errors import ConfigError, show
from mprtune.tasks.base import TaskKind


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
class Licence:
    """The data's licence as the model card states it."""

    name: str
    url: str = ""
    non_commercial: bool = False  # the model card warns at the top


@dataclass(frozen=True)
class Dataset:
    """One dataset as LLaMA-Factory reads it (config/datasets.py checks the shape, data/rows.py the rows).

    Exactly one source: `file` (a file or a folder of files, relative to the data dir), `hf_hub_url`,
    or `dataset_info` (an entry of an existing dataset_info.json, used as it is).
    """

    name: str
    file: str = ""
    rows: int | None = None
    formatting: str = "alpaca"
    # LLaMA-Factory column roles -> row keys as the matrix declares them (None: the rows have no such column)
    columns: dict[str, str | None] = field(default_factory=dict, hash=False)
    tags: dict[str, str | None] = field(default_factory=dict, hash=False)  # sharegpt role tags as declared
    hf_hub_url: str = ""
    subset: str = ""
    split: str = ""
    licence: Licence | None = None
    dataset_info: str = ""  # imported: a dataset_info.json relative to the data dir
    entry: str = ""  # its entry; "" means the dataset's own name
    id_column: str = "id"  # the row key holding a stable row id, when the rows have one

    @property
    def imported(self) -> bool:
        return bool(self.dataset_info)

    @property
    def entry_name(self) -> str:
        return self.entry or self.name


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # as the matrix names it: a kind name or a dotted path
    prompt: str
    train: tuple[str, ...]
    eval: tuple[str, ...]
    cutoff_len: int
    train_tokens: int  # planning estimate until prepared data is on disk
    system: str | None = None  # system prompt for train, predict and serve; None: the template's default
    plugin: TaskKind = field(default_factory=lambda: TaskKind(), compare=False)  # the kind, with the task's options


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
    # Every profile's data dir: each gets the dataset registry, since jobs of any profile read it
    data_dirs: tuple[str, ...] = ()
    own_data_profiles: tuple[str, ...] = ()  # profiles with datasets of their own: a registry of their own

    def select(self, names: list[str] | tuple[str, ...]) -> list[Variant]:
        unknown = [n for n in names if n not in self.variants]
        if unknown:
            raise ConfigError([f"unknown variant {show(n)}" + did_you_mean(n, self.variants) for n in unknown])
        return [self.variants[n] for n in (names or list(self.variants))]
