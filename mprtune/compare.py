"""`mprtune compare`: base model vs base + adapter on the held-out set, scored with the task's metrics.

Predictions run through LLaMA-Factory's own predict path (same template and prompts for both sides,
greedy), as jobs on the same executor as training. One baseline per (base model, eval set) is
shared by every variant that needs it. generated_predictions.jsonl carries no ids: rows are joined
with the eval files by order, after checking the counts.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mprtune.errors import MprtuneError
from mprtune.jobs import JobPaths, JobSpec, JobStatus
from mprtune.launcher import job_env
from mprtune.matrix import Matrix, Variant
from mprtune.measure import MEASURE_FILE
from mprtune.models import ensure_base_models, resolved_path
from mprtune.queue import Event, run_queue
from mprtune.render import PredictSpec, predict_specs, predict_yaml
from mprtune.runstate import config_digest, is_complete


@dataclass(frozen=True)
class EvalRow:
    id: str
    source: str
    references: list[str]
    kind: str  # qa | description for knowledge rows, else the task kind


@dataclass(frozen=True)
class CompareOutcome:
    report_dir: Path
    results: dict[str, Any]


def load_eval_rows(matrix: Matrix, variant: Variant, root: Path, limit: int | None) -> list[EvalRow]:
    """The eval rows in the order LLaMA-Factory concatenates them (max_samples applies per dataset)."""
    rows: list[EvalRow] = []
    for name in variant.task.eval:
        path = root / matrix.data_dir / matrix.datasets[name].file
        if not path.is_file():
            raise MprtuneError(f"{path}: eval data missing; run `mprtune prepare-data {variant.task.name}`")
        taken = 0
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                if limit is not None and taken >= limit:
                    break
                row = json.loads(line)
                refs = row.get("references") or [row.get("output", "")]
                if "source" not in row:
                    raise MprtuneError(f"{path}:{number}: eval row has no 'source'; re-run `mprtune prepare-data`")
                rows.append(EvalRow(str(row.get("id", f"{name}-{number}")), row["source"], list(refs),
                                    row.get("kind", variant.task.kind)))
                taken += 1
    return rows


def predict_folder(runs: Path, spec: PredictSpec) -> Path:
    return runs / spec.key / "predict" if spec.adapter_variant else runs / "baselines" / spec.key


def predict_job(matrix: Matrix, spec: PredictSpec, runs: Path, root: Path, limit: int | None) -> JobSpec:
    folder = predict_folder(runs, spec)
    config = predict_yaml(matrix, spec, output_dir=str(folder), data_dir=str(root / matrix.data_dir),
                          model_path=resolved_path(spec.model, root), max_samples=limit,
                          adapter_dir=str(runs / spec.adapter_variant) if spec.adapter_variant else None)
    env = {k: v for k, v in job_env(matrix, spec.variant, folder).items() if not k.startswith("WANDB_")}
    env["WANDB_MODE"] = "disabled"
    return JobSpec(name=f"predict:{spec.key}", kind="predict", folder=folder,
                   command=(sys.executable, "-m", "mprtune.measure", str(JobPaths(folder).config)),
                   env=env, cwd=root, config_text=config, estimate_s=spec.model.params)


def read_predictions(folder: Path, expected: int) -> list[str]:
    path = folder / "generated_predictions.jsonl"
    outputs = [json.loads(line)["predict"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(outputs) != expected:
        raise MprtuneError(f"{path}: {len(outputs)} predictions for {expected} eval rows; the join by order "
                           f"would be wrong (delete the folder and re-run `mprtune compare`)")
    return [o.strip() for o in outputs]


def read_timing(folder: Path, rows: int) -> dict[str, Any]:
    results = json.loads((folder / "predict_results.json").read_text())
    try:
        measure = json.loads((folder / MEASURE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        measure = {}
    runtime = float(results.get("predict_runtime", 0.0))
    return {"seconds_per_sample": runtime / rows if rows else 0.0,
            "samples_per_second": float(results.get("predict_samples_per_second", 0.0)),
            "peak_memory_mb": measure.get("peak_memory_mb"), "memory_kind": measure.get("memory_kind", "rss")}


def run_predictions(matrix: Matrix, variants: list[Variant], runs: Path, root: Path, executor: Any,
                    limit: int | None, on_event: Callable[[Event], None]) -> dict[str, Path]:
    """Run (or reuse) every prediction job; returns the folder of each spec key."""
    for variant in variants:
        if not is_complete(runs / variant.name, "train"):
            raise MprtuneError(f"{runs / variant.name}: {variant.name} has not finished training; "
                               f"run `mprtune train {variant.name}` first")
    specs = predict_specs(matrix, variants)
    jobs = [predict_job(matrix, spec, runs, root, limit) for spec in specs]
    todo = []
    for job in jobs:
        status = JobStatus.read(job.paths.status)
        fresh = status is not None and status.config_sha256 == config_digest(job.config_text)
        if not (fresh and is_complete(job.folder, "predict")):
            for stale in ("generated_predictions.jsonl", "predict_results.json", MEASURE_FILE):
                (job.folder / stale).unlink(missing_ok=True)
            todo.append(job)
    todo.sort(key=lambda j: -j.estimate_s)
    final = run_queue(todo, executor, retries=1, on_event=on_event)
    failed = [s for s in final.values() if s.state != "done"]
    if failed:
        raise MprtuneError("prediction failed: " + "; ".join(f"{s.name}: {s.reason} (log {runs})" for s in failed))
    return {spec.key: job.folder for spec, job in zip(specs, jobs)}


def scoring_columns(variant: Variant, rows: list[EvalRow]) -> tuple[list[str], list[list[str]], list[str] | None]:
    """(sources, references, row kinds) as the metrics take them; row kinds matter for knowledge only."""
    kinds = [r.kind for r in rows] if variant.task.kind == "knowledge" else None
    return [r.source for r in rows], [r.references for r in rows], kinds


def score_variant(variant: Variant, rows: list[EvalRow], baseline: list[str], tuned: list[str]) -> dict[str, Any]:
    from mprtune.metrics import paired_diffs, score_rows

    kind = variant.task.kind
    sources, references, kinds = scoring_columns(variant, rows)
    return {
        "baseline": score_rows(kind, baseline, sources, references, kinds),
        "tuned": score_rows(kind, tuned, sources, references, kinds),
        "diff": paired_diffs(kind, tuned, baseline, sources, references, kinds),
    }


def sample_candidates(variant: Variant, rows: list[EvalRow], baseline: list[str],
                      tuned: list[str]) -> list[dict[str, Any]]:
    """Every row with both systems' per-row tags; the report picks the informative ones."""
    from mprtune.metrics import per_row

    kind = variant.task.kind
    sources, references, kinds = scoring_columns(variant, rows)
    base_tags = per_row(kind, baseline, sources, references, kinds)
    tuned_tags = per_row(kind, tuned, sources, references, kinds)
    return [{"id": row.id, "source": row.source, "reference": row.references, "baseline_output": baseline[i],
             "tuned_output": tuned[i], "baseline_row": base_tags[i], "tuned_row": tuned_tags[i]}
            for i, row in enumerate(rows)]


def build_results(matrix: Matrix, variants: list[Variant], runs: Path, root: Path, folders: dict[str, Path],
                  limit: int | None) -> dict[str, Any]:
    from mprtune.collect import collect_runs
    from mprtune.render import baseline_key
    from mprtune.report import select_samples
    from mprtune.results_schema import metric_definitions

    entries, candidates, used = [], {}, set()
    for variant in variants:
        rows = load_eval_rows(matrix, variant, root, limit)
        base_folder, tuned_folder = folders[baseline_key(variant)], folders[variant.name]
        baseline = read_predictions(base_folder, len(rows))
        tuned = read_predictions(tuned_folder, len(rows))
        scores = score_variant(variant, rows, baseline, tuned)
        used.update(scores["tuned"])
        entries.append({
            "variant": variant.name, "model": variant.model.name, "model_path": variant.model.path,
            "task": variant.task.name, "task_kind": variant.task.kind, "eval_datasets": list(variant.task.eval),
            "n_rows": len(rows), "baseline_key": baseline_key(variant),
            "baseline": {"metrics": scores["baseline"], "timing": read_timing(base_folder, len(rows))},
            "tuned": {"metrics": scores["tuned"], "timing": read_timing(tuned_folder, len(rows))},
            "diff": scores["diff"],
        })
        candidates[variant.name] = sample_candidates(variant, rows, baseline, tuned)
    names = {v.name for v in variants}
    training = [{"variant": r.variant, "state": r.state, "train_seconds": r.train_seconds,
                 "final_loss": r.final_loss, "best_loss": r.best_loss, "steps": r.steps,
                 "samples_per_second": r.samples_per_second, "adapter_path": r.adapter_path,
                 "adapter_bytes": r.adapter_bytes} for r in collect_runs(matrix, runs) if r.variant in names]
    recipe = {k: v for k, v in next(iter(variants)).recipe.items() if k != "extra_args"} if variants else {}
    return {
        "schema_version": 1, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "profile": matrix.profile,
        "matrix": matrix.source.name, "confidence": 0.95, "recipe": recipe,
        "metrics": metric_definitions(sorted(used)),
        "variants": entries, "training": training, "samples": select_samples(candidates, k=5),
    }


def log_to_wandb(matrix: Matrix, results: dict[str, Any], report_dir: Path, plots: list[Path]) -> None:
    """The comparison table and plots as a W&B run of job type `compare` (offline without a login)."""
    import os

    import wandb

    from mprtune.launcher import wandb_logged_in

    mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
    run = wandb.init(project=matrix.wandb_project, job_type="compare", name=f"compare-{report_dir.name}",
                     dir=str(report_dir), mode=mode, config={"profile": matrix.profile})
    columns = ["variant", "system", "metric", "value", "ci_low", "ci_high"]
    table = wandb.Table(columns=columns)
    for entry in results["variants"]:
        for system in ("baseline", "tuned"):
            for metric, value in sorted(entry[system]["metrics"].items()):
                table.add_data(entry["variant"], system, metric, value["value"], value["ci_low"], value["ci_high"])
    run.log({"comparison": table, **{f"plots/{p.stem}": wandb.Image(str(p)) for p in plots}})
    run.finish()


def compare(matrix: Matrix, variants: list[Variant], runs: Path, root: Path, executor: Any, limit: int | None,
            reports: Path, on_event: Callable[[Event], None] = lambda e: None) -> CompareOutcome:
    from mprtune.collect import loss_curves
    from mprtune.report import write_report

    ensure_base_models(matrix, root, sorted({v.model.name for v in variants}))
    folders = run_predictions(matrix, variants, runs, root, executor, limit, on_event)
    results = build_results(matrix, variants, runs, root, folders, limit)
    report_dir = reports / time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while report_dir.exists():
        suffix += 1
        report_dir = reports / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    curves = {k: v for k, v in loss_curves(matrix, runs).items() if k in {x.name for x in variants}}
    files = write_report(results, report_dir, curves)
    if any(v.recipe.get("report_to") == "wandb" for v in variants):
        log_to_wandb(matrix, results, report_dir, list(files.plots))
    return CompareOutcome(report_dir, results)
