"""`mprtune compare`: base model vs base + adapter on the held-out set, scored with the task's metrics.

Predictions run through LLaMA-Factory's own predict path (same template and prompts for both sides,
greedy), as jobs on the same executor as training (see predictions.py). One baseline per set of
generation settings is shared by every variant that needs it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprtune.config.matrix import Variant
from mprtune.config.render import baseline_key
from mprtune.evaluate.predictions import read_predictions, read_timing, run_predictions
from mprtune.evaluate.presentation import presentation_entry
from mprtune.evaluate.provenance import provenance
from mprtune.launch.env import wandb_mode
from mprtune.launch.jobs import Executor
from mprtune.launch.queue import Event
from mprtune.metrics.registry import MetricSpec
from mprtune.rows import EvalRow
from mprtune.workspace import Workspace


@dataclass(frozen=True)
class CompareOutcome:
    report_dir: Path
    results: dict[str, Any]
    predictions_run: list[str] = field(default_factory=list)  # prediction jobs that ran in this call
    predictions_reused: list[str] = field(default_factory=list)  # ...and those reused from an earlier one
    wandb: str | None = None  # where the comparison was logged, when the recipe reports to W&B

    def predictions_line(self) -> str:
        return f"predictions: {len(self.predictions_run)} ran, {len(self.predictions_reused)} reused from earlier runs"

    def summary_lines(self) -> list[str]:
        return [self.predictions_line().capitalize(), *([self.wandb] if self.wandb else [])]


def score_variant(variant: Variant, rows: list[EvalRow], baseline: list[str], tuned: list[str]) -> dict[str, Any]:
    """Both systems' metrics, their paired differences and per-row tags, on one set of resamples."""
    from mprtune.metrics.api import compare_scores

    kind = variant.task.plugin
    tuned_scores, baseline_scores = kind.score(rows, tuned), kind.score(rows, baseline)
    found = compare_scores(tuned_scores, baseline_scores)
    found["details"] = {"baseline": baseline_scores.details, "tuned": tuned_scores.details}
    return found


def qualified_names(task: str, specs: dict[str, MetricSpec], defined: dict[str, MetricSpec]) -> dict[str, str]:
    """Metric name -> its key in results.json: the name, or `<task>.<name>` when another task defined the
    same name differently (a custom task's exact_match is not the grammar kind's)."""
    keys = {}
    for name, spec in specs.items():
        earlier = defined.get(name)
        keys[name] = name if earlier is None or earlier == spec else f"{task}.{name}"
    return keys


def _details(details: dict[str, Any]) -> dict[str, Any]:
    """A system's non-scalar results (a confusion matrix), only when its kind gives any."""
    return {"details": details} if details else {}


def _renamed(block: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    return {keys.get(name, name): value for name, value in block.items()}


def sample_candidates(
    variant: Variant, rows: list[EvalRow], baseline: list[str], tuned: list[str], scores: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every row with both systems' per-row tags; the report picks the informative ones."""
    kind = variant.task.plugin
    return [
        {
            "id": row.id,
            "source": row.source,
            "reference": list(row.references),
            "baseline_output": baseline[i],
            "tuned_output": tuned[i],
            "baseline_row": scores["baseline_rows"][i],
            "tuned_row": scores["tuned_rows"][i],
            "baseline_tags": kind.sample_tags(scores["baseline_rows"][i]),
            "tuned_tags": kind.sample_tags(scores["tuned_rows"][i]),
            "baseline_good": kind.good(scores["baseline_rows"][i]),
            "tuned_good": kind.good(scores["tuned_rows"][i]),
        }
        for i, row in enumerate(rows)
    ]


def model_entries(ws: Workspace, variants: list[Variant]) -> list[dict[str, Any]]:
    """What each base model really is, so nobody mistakes a stand-in or a random model for the real thing."""
    used = sorted({v.model.name for v in variants})
    return [
        {
            "name": name,
            "path": ws.matrix.models[name].path,
            "random_weights": ws.matrix.models[name].is_random,
            "note": ws.matrix.models[name].note,
        }
        for name in used
    ]


def build_results(ws: Workspace, variants: list[Variant], folders: dict[str, Any]) -> dict[str, Any]:
    from mprtune.evaluate.samples import select_samples
    from mprtune.evaluate.schema import SCHEMA_VERSION, metric_definitions
    from mprtune.evaluate.sweeps import results_sweeps, variant_sweep
    from mprtune.launch.inventory import collect_runs

    entries: list[dict[str, Any]] = []
    candidates: dict[str, list[dict[str, Any]]] = {}
    used: set[str] = set()
    specs: dict[str, Any] = {}
    eval_data: dict[str, str] = {}
    for variant in variants:
        key = baseline_key(ws.matrix, variant)
        base_folder, eval_set = folders[key]
        tuned_folder, _ = folders[variant.name]
        rows = eval_set.rows
        eval_data.update(eval_set.sha256)
        baseline, tuned = read_predictions(base_folder, rows), read_predictions(tuned_folder, rows)
        scores = score_variant(variant, rows, baseline, tuned)
        own = variant.task.plugin.metric_specs()
        keys = qualified_names(variant.task.name, own, specs)
        specs.update({keys[name]: spec for name, spec in own.items()})
        for part in ("baseline", "tuned", "diff"):
            scores[part] = _renamed(scores[part], keys)
        used.update(scores["tuned"], scores["baseline"])
        shown = presentation_entry(variant.task.plugin)
        for listed in ("summary", "table", "panel"):
            shown[listed] = [keys.get(name, name) for name in shown[listed]]
        shown["primary"] = keys.get(shown["primary"], shown["primary"])
        entries.append(
            {
                "variant": variant.name,
                "model": variant.model.name,
                "model_path": variant.model.path,
                "task": variant.task.name,
                "task_kind": variant.task.kind,
                "eval_datasets": list(variant.task.eval),
                "presentation": shown,
                "n_rows": len(rows),
                "baseline_key": key,
                "sweep": variant_sweep(variant),
                "baseline": {
                    "metrics": scores["baseline"],
                    "timing": read_timing(base_folder, len(rows)),
                    **_details(scores["details"]["baseline"]),
                },
                "tuned": {
                    "metrics": scores["tuned"],
                    "timing": read_timing(tuned_folder, len(rows)),
                    **_details(scores["details"]["tuned"]),
                },
                "diff": scores["diff"],
            }
        )
        candidates[variant.name] = sample_candidates(variant, rows, baseline, tuned, scores)
    names = {v.name for v in variants}
    training = [
        {
            "variant": r.variant,
            "state": r.state,
            "train_seconds": r.train_seconds,
            "final_loss": r.final_loss,
            "best_loss": r.best_loss,
            "steps": r.steps,
            "samples_per_second": r.samples_per_second,
            "adapter_path": r.adapter_path,
            "adapter_bytes": r.adapter_bytes,
        }
        for r in collect_runs(ws)
        if r.variant in names
    ]
    recipe = {k: v for k, v in variants[0].recipe.items() if k != "extra_args"} if variants else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "profile": ws.profile,
        "matrix": ws.matrix.source.name,
        "confidence": 0.95,
        "recipe": recipe,
        "models": model_entries(ws, variants),
        "provenance": provenance(ws.root, ws.matrix.source, eval_data),
        "metrics": metric_definitions({name: specs[name] for name in used}),
        "variants": entries,
        "sweeps": results_sweeps(ws.matrix, variants),
        "training": training,
        "samples": select_samples(candidates, k=5),
    }


def log_to_wandb(ws: Workspace, results: dict[str, Any], report_dir: Path, plots: list[Path]) -> str:
    """The comparison table and plots as a W&B run of job type `compare` (offline without a login).

    W&B prints nothing (its own log is in the run folder); returns the one line that says where the run is.
    """
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(
        project=ws.matrix.wandb_project,
        job_type="compare",
        name=f"compare-{report_dir.name}",
        dir=str(report_dir),
        mode=wandb_mode(),  # type: ignore[arg-type]  # one of online/offline/disabled, from the environment
        config={"profile": ws.profile},
        settings=wandb.Settings(silent=True, console="off"),
    )
    table = wandb.Table(columns=["variant", "system", "metric", "value", "ci_low", "ci_high"])
    for entry in results["variants"]:
        for system in ("baseline", "tuned"):
            for metric, value in sorted(entry[system]["metrics"].items()):
                table.add_data(entry["variant"], system, metric, value["value"], value["ci_low"], value["ci_high"])
    run.log({"comparison": table, **{f"plots/{p.stem}": wandb.Image(str(p)) for p in plots}})
    where = (
        f"W&B: {run.url}"
        if not run.offline and run.url
        else f"W&B: offline run in {run.settings.sync_dir} (`wandb sync` that folder to upload it)"
    )
    run.finish()
    return where


def new_report_dir(reports: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report_dir, suffix = reports / stamp, 1
    while report_dir.exists():
        suffix += 1
        report_dir = reports / f"{stamp}-{suffix}"
    return report_dir


def compare(
    ws: Workspace,
    variants: list[Variant],
    executor: Executor,
    limit: int | None,
    reports: Path,
    on_event: Callable[[Event], None] = lambda e: None,
) -> CompareOutcome:
    from mprtune.evaluate.report import write_report
    from mprtune.launch.inventory import loss_curves

    seen: dict[str, set[str]] = {"finished": set(), "reused": set()}

    def tally(event: Event) -> None:
        seen.get(event.kind, set()).add(event.name)
        on_event(event)

    folders = run_predictions(ws, variants, executor, limit, tally)
    results = build_results(ws, variants, folders)
    report_dir = new_report_dir(reports)
    files = write_report(results, report_dir, loss_curves(ws, {v.name for v in variants}))
    logged = None
    if any(v.recipe.get("report_to") == "wandb" for v in variants):
        logged = log_to_wandb(ws, results, report_dir, list(files.plots))
    return CompareOutcome(report_dir, results, sorted(seen["finished"]), sorted(seen["reused"]), logged)
