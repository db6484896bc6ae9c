"""What the matrix accepts: key types and value ranges per section, and the collector of problems.

Validation never stops at the first problem: every check appends `key.path: what is wrong` to one
list (values cut to a readable length), and the caller raises one ConfigError carrying them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mprtune.errors import show

Kind = type | tuple[type, ...]
Range = tuple[float, float, bool]  # (low, high, low_open)
Ranges = Mapping[str, Range]
NUMBER = (int, float)
MAX_INT = 2**31 - 1  # what LLaMA-Factory, torch and Slurm take as an integer setting
MAX_GPUS = 4096
MAX_NODES = 4096
DEEPSPEED_STAGES = ("zero2", "zero3")
# Folder names and torchrun arguments: LLaMA-Factory re-splits arguments on spaces under torchrun.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
UNSAFE_NAME = "unsafe name: use up to 100 letters, digits, '_', '-', '.' (no spaces, '/', quotes)"
NAME_MAX = 255  # bytes per folder or file name on Linux file systems

# Recipe keys mprtune knows the type of. Anything else goes under `extra_args`, which
# LLaMA-Factory's own parser checks at render time.
RECIPE_TYPES: dict[str, Kind] = {
    "stage": str,
    "finetuning_type": str,
    "lora_rank": int,
    "lora_alpha": int,
    "lora_dropout": NUMBER,
    "lora_target": str,
    "learning_rate": NUMBER,
    "lr_scheduler_type": str,
    "warmup_ratio": NUMBER,
    "weight_decay": NUMBER,
    "per_device_train_batch_size": int,
    "gradient_accumulation_steps": int,
    "num_train_epochs": NUMBER,
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
    # mprtune's own, not rendered: GPUs one job gets at once (torchrun DDP with NPROC_PER_NODE=gpus).
    "gpus": int,
    # mprtune's own, not rendered: Slurm nodes one job spans (`gpus` is then per node); > 1 needs Slurm.
    "nodes": int,
}
# (low, high, low_open): inclusive bounds unless low_open; every number must also be finite.
RECIPE_RANGES: Ranges = {
    **{
        key: (1, MAX_INT, False)
        for key in (
            "lora_rank",
            "lora_alpha",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "logging_steps",
            "save_steps",
            "cutoff_len",
            "max_steps",
            "save_total_limit",
            "max_samples",
        )
    },
    **{key: (0, MAX_INT, False) for key in ("seed", "preprocessing_num_workers", "dataloader_num_workers")},
    "learning_rate": (0, 1, True),
    "lora_dropout": (0, 1, False),
    "warmup_ratio": (0, 1, False),
    "weight_decay": (0, 10, False),
    "num_train_epochs": (0, 1e6, True),
    "gpus": (1, MAX_GPUS, False),
    "nodes": (1, MAX_NODES, False),
}
PREDICT_TYPES: dict[str, Kind] = {
    "per_device_eval_batch_size": int,
    "max_new_tokens": int,
    "do_sample": bool,
    "cutoff_len": int,
    "latency_rows": int,  # rows replayed one request at a time to measure latency (0: skip)
}
PREDICT_RANGES: Ranges = {
    "per_device_eval_batch_size": (1, MAX_INT, False),
    "max_new_tokens": (1, MAX_INT, False),
    "cutoff_len": (1, MAX_INT, False),
    "latency_rows": (0, MAX_INT, False),
}
MODEL_TYPES: dict[str, Kind] = {
    "path": str,
    "template": str,
    "params": NUMBER,
    "tiny_seed": int,
    "note": str,  # what the model really is, shown at the top of reports (e.g. a stand-in for a bigger one)
    "source": dict,  # where the weights come from (config/model_source.py); replaces `path`
    "gpus": int,  # GPUs every variant of this model gets unless the variant says otherwise
    "nodes": int,  # Slurm nodes, likewise (`gpus` is then per node)
}
MODEL_RANGES: Ranges = {
    "params": (0, 1e15, True),
    "tiny_seed": (0, MAX_INT, False),
    "gpus": (1, MAX_GPUS, False),
    "nodes": (1, MAX_NODES, False),
}
TASK_TYPES: dict[str, Kind] = {
    "kind": str,
    "prompt": str,
    "system": str,  # the system prompt of training, prediction and serving alike (LLaMA-Factory's default_system)
    "train": list,
    "eval": list,
    "cutoff_len": int,
    "train_tokens": int,
}
TASK_RANGES: Ranges = {"cutoff_len": (1, MAX_INT, False), "train_tokens": (1, 1e15, False)}
DATASET_TYPES: dict[str, Kind] = {
    "file": str,  # a file or a folder of files, relative to the data dir
    "rows": int,
    "formatting": str,  # alpaca | sharegpt, as LLaMA-Factory names them
    "columns": dict,  # LLaMA-Factory column roles -> row keys
    "tags": dict,  # sharegpt role tags
    "hf_hub_url": str,
    "subset": str,
    "split": str,
    "licence": (str, dict),  # a name, or {name, url, non_commercial}
    "dataset_info": str,  # import: an existing dataset_info.json, relative to the data dir
    "entry": str,  # its entry (default: the dataset's name)
    "id_column": str,  # the row key with a stable row id (default: id)
}
DATASET_RANGES: Ranges = {"rows": (0, MAX_INT, False)}
HARDWARE_TYPES: dict[str, Kind] = {"gpus": list, "slots": int}
HARDWARE_RANGES: Ranges = {"slots": (1, 4096, False)}
WANDB_TYPES: dict[str, Kind] = {"project": str}
SLURM_TYPES: dict[str, Kind] = {
    "partition": str,
    "time": str,
    "account": str,
    "cpus_per_task": int,
    "mem": str,
    "sbatch_args": list,
    "setup": list,  # setup: shell lines (module load, conda activate) run before the job
}
SLURM_RANGES: Ranges = {"cpus_per_task": (1, 4096, False)}


def did_you_mean(name: str, known: Any) -> str:
    """`; did you mean 'x'?` for a near miss, else the list of known names (short lists only)."""
    import difflib

    known = [str(k) for k in known]
    close = difflib.get_close_matches(str(name), known, n=2, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f" (known: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''})"


def type_name(expected: Kind) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }
    if isinstance(expected, tuple):
        return "a number" if set(expected) == {int, float} else " or ".join(names[t] for t in expected)
    return names[expected]


def type_ok(value: Any, expected: Kind) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # YAML `on`/`yes` become booleans: never accept them as numbers
    return isinstance(value, kinds)


def range_problem(value: Any, bounds: Range) -> str | None:
    """Why a number is out of range (infinite, NaN, too small, too big), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    low, high, low_open = bounds
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {show(value)}"
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        lower = f"> {low:g}" if low_open else f">= {low:g}"
        return f"expected a number {lower} and <= {high:g}, got {show(value)}"
    return None


class Problems:
    """Every problem found, as `key.path: message` lines."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def check_mapping(
        self,
        path: str,
        value: Any,
        types: dict[str, Kind],
        required: tuple[str, ...] = (),
        ranges: Ranges | None = None,
    ) -> dict:
        """Keys known and required, values of the right type and in range; returns the mapping or {}."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {show(value)}")
            return {}
        for key in required:
            if key not in value:
                self.add(f"{path}.{key}", "missing required key")
        for key, item in value.items():
            if key not in types:
                self.add(f"{path}.{key}", f"unknown key (known: {', '.join(sorted(types))})")
            elif not type_ok(item, types[key]):
                self.add(f"{path}.{key}", f"expected {type_name(types[key])}, got {show(item)}")
            elif ranges and key in ranges and (problem := range_problem(item, ranges[key])):
                self.add(f"{path}.{key}", problem)
        return value

    def valid(self, value: dict, types: dict[str, Kind], ranges: Ranges, key: str) -> bool:
        """Whether one key of an already checked mapping holds a usable value."""
        item = value.get(key)
        return type_ok(item, types[key]) and (key not in ranges or range_problem(item, ranges[key]) is None)
