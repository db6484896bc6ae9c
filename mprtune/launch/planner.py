"""Duration estimates and the longest-processing-time-first (LPT) schedule over slots.

Estimate: LoRA training costs about 6 x parameters x tokens FLOPs (forward + backward through the
frozen base), so seconds = 6 * params * tokens * epochs / EFFECTIVE_FLOPS. EFFECTIVE_FLOPS is a
documented guess for a 2x L40 node (bf16 dense peak ~181 TFLOP/s at ~20% utilisation); the
measured runtime of finished runs replaces it (median ratio actual / estimated). A job on k GPUs
(DDP) is k x DDP_EFFICIENCY times faster per token, and sees k times the rows per optimizer step.

The schedule is the work queue's own policy (launch/policy.py) run over the estimates, so a job k
slots wide holds k slots; its lower bound is max(sum(width x seconds) / slots, longest).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass

from mprtune.config.matrix import Variant
from mprtune.errors import ConfigError, MprtuneError
from mprtune.launch.jobs import SLOT_SEP
from mprtune.launch.policy import Waiting, simulate
from mprtune.tasks import CHARS_PER_TOKEN
from mprtune.workspace import Workspace

EFFECTIVE_FLOPS = 36e12
DDP_EFFICIENCY = 0.9  # a guess: gradient all-reduce over PCIe costs ~10% at LoRA's small gradient size
TEMPLATE_TOKENS = 12  # llama3 chat template overhead per row


@dataclass(frozen=True)
class Estimate:
    variant: str
    seconds: float
    tokens: float
    source: str  # "matrix" (train_tokens) or "data" (measured from the prepared files)
    width: int = 1  # slots (GPUs) the job holds at once, on each of its nodes
    nodes: int = 1  # Slurm nodes the job spans

    @property
    def area(self) -> float:
        return self.width * self.seconds

    @property
    def gpu_seconds(self) -> float:
        """What the job books on a cluster: every GPU of every node for its whole run."""
        return self.nodes * self.width * self.seconds

    @property
    def shape(self) -> str:
        gpus = f"{self.width} GPU{'s' if self.width > 1 else ''}"
        return f"{self.nodes} nodes × {gpus}" if self.nodes > 1 else gpus


@dataclass(frozen=True)
class Placement:
    variant: str
    slot: str  # one slot, or several joined by "," for a wide job
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Schedule:
    placements: list[Placement]
    makespan_s: float
    lower_bound_s: float

    @property
    def ratio(self) -> float:
        return self.makespan_s / self.lower_bound_s if self.lower_bound_s else 1.0


def training_tokens(ws: Workspace, names: list[str]) -> tuple[float, int] | None:
    """(tokens, rows) of the training datasets as LLaMA-Factory reads them (any format); None if any is missing."""
    from mprtune.data.datasets import dataset_size

    sizes = [dataset_size(ws, name) for name in names]
    if any(size is None for size in sizes):
        return None
    chars, rows = sum(s[0] for s in sizes if s), sum(s[1] for s in sizes if s)
    return chars / CHARS_PER_TOKEN + TEMPLATE_TOKENS * rows, rows


def estimate(ws: Workspace, variant: Variant, calibration: float = 1.0) -> Estimate:
    recipe = variant.recipe
    measured = training_tokens(ws, list(variant.task.train))
    if measured:
        tokens_per_epoch, rows = measured
        source = "data"
    else:
        tokens_per_epoch, rows, source = float(variant.task.train_tokens), 0, "matrix"
    tokens = tokens_per_epoch * float(recipe.get("num_train_epochs", 1))
    width, ranks = variant.gpus, variant.gpus * variant.nodes
    if recipe.get("max_steps") and rows:
        rows_per_step = (
            recipe.get("per_device_train_batch_size", 1) * recipe.get("gradient_accumulation_steps", 1) * ranks
        )
        tokens = min(tokens, recipe["max_steps"] * rows_per_step * tokens_per_epoch / rows)
    speedup = ranks * DDP_EFFICIENCY if ranks > 1 else 1.0
    seconds = 6 * variant.model.params * tokens / EFFECTIVE_FLOPS * calibration / speedup
    return Estimate(variant.name, seconds, tokens, source, width, variant.nodes)


def calibration_from_runs(ws: Workspace) -> float:
    """Median of measured / estimated runtime over finished runs (1.0 when none finished)."""
    ratios = []
    for variant in ws.matrix.variants.values():
        results = ws.run_dir(variant.name) / "train_results.json"
        try:
            runtime = float(json.loads(results.read_text())["train_runtime"])
        except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError):
            continue
        guess = estimate(ws, variant).seconds
        if guess > 0 and runtime > 0 and math.isfinite(runtime):
            ratios.append(runtime / guess)
    return statistics.median(ratios) if ratios else 1.0


def lpt_order(estimates: list[Estimate]) -> list[Estimate]:
    """Longest first; ties by name so the order is deterministic."""
    return sorted(estimates, key=lambda e: (-e.seconds, e.variant))


def check_widths(estimates: list[Estimate], slots: list[str]) -> None:
    """A job wider than every slot together would wait forever: refuse it before anything runs.

    The local queue runs on this one machine, so a job spanning nodes is refused here too.
    """
    multi_node = [e for e in estimates if e.nodes > 1]
    if multi_node:
        raise ConfigError(
            [
                f"{e.variant}: nodes: {e.nodes} needs the Slurm backend (the local queue runs on this machine "
                f"only): use `--backend slurm`, or set nodes: 1"
                for e in multi_node
            ]
        )
    too_wide = [e for e in estimates if e.width > len(slots)]
    if too_wide:
        names = ", ".join(f"{e.variant} (gpus: {e.width})" for e in too_wide)
        raise MprtuneError(
            f"{names}: needs more GPUs than the {len(slots)} slot(s) of this run ({','.join(slots)}); "
            f"give it more (--gpus, hardware.gpus, --slots) or lower its `gpus`"
        )


def lower_bound(estimates: list[Estimate], capacity: int) -> float:
    """No schedule beats max(total slot-seconds / slots, longest job)."""
    total = sum(e.area for e in estimates)
    return max(total / max(1, capacity), max((e.seconds for e in estimates), default=0.0))


def lpt_schedule(estimates: list[Estimate], slots: list[str]) -> Schedule:
    """The queue's policy in LPT order, simulated over the estimates (wide jobs hold several slots)."""
    check_widths(estimates, slots)
    runs = simulate([Waiting(e.variant, e.width, e.seconds) for e in lpt_order(estimates)], slots)
    placements = [Placement(r.name, SLOT_SEP.join(r.slots), r.start_s, r.end_s) for r in runs]
    makespan = max((r.end_s for r in runs), default=0.0)
    return Schedule(placements, makespan, lower_bound(estimates, len(slots)))
