"""Prediction jobs for `compare`: eval rows in, LLaMA-Factory's generated_predictions.jsonl out, joined safely.

LLaMA-Factory writes predictions without ids, in dataset order. Every prediction is therefore
checked against its row: the `label` LLaMA-Factory echoes must be the row's `output` (compared
without whitespace, since its decoder cleans up spaces), so a shuffled or edited eval file can
never put one row's output under another row's input. Jobs are keyed on the eval rows' content:
editing the eval data re-runs the predictions instead of reusing stale ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.config.matrix import Task, Variant
from mprtune.config.render import PredictSpec, predict_specs, predict_yaml
from mprtune.errors import DataError, MprtuneError
from mprtune.evaluate.measure import LATENCY_PROMPTS, MEASURE_FILE
from mprtune.launch.env import predict_env
from mprtune.launch.jobs import Executor, JobPaths, JobSpec, JobStatus
from mprtune.launch.queue import Event, run_queue
from mprtune.launch.state import config_digest
from mprtune.models import ensure_base_models, resolved_path
from mprtune.rows import EvalRow, chat_messages
from mprtune.tasks import TaskKind
from mprtune.workspace import Workspace

PREDICTIONS = "generated_predictions.jsonl"
LATENCY_ROWS_DEFAULT = 8


@dataclass(frozen=True)
class EvalSet:
    rows: list[EvalRow]
    sha256: dict[str, str]  # eval file -> sha256 of the rows used (after --limit)


def load_eval_rows(ws: Workspace, variant: Variant, limit: int | None) -> EvalSet:
    """The eval rows in the order LLaMA-Factory concatenates them (max_samples applies per dataset)."""
    if not variant.task.plugin.preparers:  # the user's own data, in any format LLaMA-Factory reads
        return task_eval_rows(ws, variant.task, limit)
    rows: list[EvalRow] = []
    digests: dict[str, str] = {}
    for name in variant.task.eval:
        path = ws.data_dir / ws.matrix.datasets[name].file
        if not path.is_file():
            raise MprtuneError(f"{path}: eval data missing; run `mprtune prepare-data {variant.task.name}`")
        found, digests[str(path)] = prepared_rows(path, name, variant.task.plugin, limit)
        rows += found
    return EvalSet(rows, digests)


def prepared_rows(path: Path, dataset: str, kind: TaskKind, limit: int | None = None) -> tuple[list[EvalRow], str]:
    """A built-in kind's eval rows from one file `prepare-data` wrote (JSON lines), and the sha256 of those used."""
    rows: list[EvalRow] = []
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            if limit is not None and len(rows) >= limit:
                break
            digest.update(raw)
            rows.append(_eval_row(path, number, raw, dataset, kind))
    return rows, digest.hexdigest()


def task_eval_rows(ws: Workspace, task: Task, limit: int | None = None) -> EvalSet:
    """Eval rows of a kind that reads the user's datasets: each row's conversation as LLaMA-Factory builds it."""
    from mprtune.data.datasets import read_rows, resolved_dataset

    rows: list[EvalRow] = []
    digests: dict[str, str] = {}
    kind = task.plugin
    for name in task.eval:
        digest = hashlib.sha256()
        for row in read_rows(ws, name, limit):
            digest.update(json.dumps(row.raw, sort_keys=True, ensure_ascii=False).encode() + b"\n")
            rows.append(kind.eval_row(row.raw, row.conversation, row.where, row.id))
        ds = resolved_dataset(ws, name)
        where = str(ws.data_dir / ds.file) if ds.file else f"hf:{ds.hf_hub_url}" if ds.hf_hub_url else name
        digests[where] = digest.hexdigest()
    return EvalSet(rows, digests)


def _eval_row(path: Path, number: int, raw: bytes, dataset: str, kind: TaskKind) -> EvalRow:
    where = f"{path}:{number}"
    try:
        row = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 (byte {exc.start} of the line); re-run `mprtune prepare-data`") from None
    except (ValueError, RecursionError):  # bad JSON, absurd nesting, a number with thousands of digits
        raise DataError(f"{where}: not a JSON line; re-run `mprtune prepare-data`") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return kind.eval_row(row, None, where, f"{dataset}-{number}")


def predict_folder(ws: Workspace, spec: PredictSpec) -> Path:
    return ws.run_dir(spec.key) / "predict" if spec.adapter_variant else ws.runs / "baselines" / spec.key


def predict_config(ws: Workspace, spec: PredictSpec, limit: int | None) -> str:
    """The prediction job's LLaMA-Factory config, with absolute paths (what `serve` also reads)."""
    return predict_yaml(
        ws.matrix,
        spec,
        output_dir=str(predict_folder(ws, spec)),
        data_dir=str(ws.data_dir),
        model_path=resolved_path(spec.model, ws.root),
        max_samples=limit,
        adapter_dir=str(ws.run_dir(spec.adapter_variant)) if spec.adapter_variant else None,
    )


def predict_job(ws: Workspace, spec: PredictSpec, eval_set: EvalSet, limit: int | None) -> JobSpec:
    folder = predict_folder(ws, spec)
    config = predict_config(ws, spec, limit)
    # The eval rows' content is part of the job's identity: edited data never reuses old predictions.
    latency_rows = int(ws.matrix.predict.get("latency_rows", LATENCY_ROWS_DEFAULT))
    config += "".join(f"# eval data {path} sha256 {sha}\n" for path, sha in sorted(eval_set.sha256.items()))
    config += f"# latency measured on the first {latency_rows} rows\n"
    command = (sys.executable, "-m", "mprtune.evaluate.measure", str(JobPaths(folder).config))
    return JobSpec(
        name=f"predict:{spec.key}",
        kind="predict",
        folder=folder,
        command=command,
        env=predict_env(),
        cwd=ws.root,
        config_text=config,
        estimate_s=spec.model.params,
        extra_files={LATENCY_PROMPTS: json.dumps([latency_prompt(r) for r in eval_set.rows[:latency_rows]])},
    )


def latency_prompt(row: EvalRow) -> str | dict[str, Any]:
    """What the latency probe replays: the user turn, or the whole conversation when the row has more."""
    return {"messages": chat_messages(row)} if row.system or row.history else row.prompt


def _no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def same_label(echoed: str, output: str) -> bool:
    """Whether LLaMA-Factory's echoed label is this row's output (its decoder cleans up spaces)."""
    return _no_space(echoed) == _no_space(output)


def read_predictions(folder: Path, rows: list[EvalRow]) -> list[str]:
    """The predictions, one per row, each proven to belong to its row by LLaMA-Factory's echoed label."""
    path = folder / PREDICTIONS
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if len(lines) != len(rows):
        raise MprtuneError(
            f"{path}: {len(lines)} predictions for {len(rows)} eval rows; re-run `mprtune compare` "
            f"(stale predictions are replaced)"
        )
    outputs = []
    for number, (line, row) in enumerate(zip(lines, rows, strict=False), 1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict):
            raise MprtuneError(
                f"{path}:{number}: damaged prediction line; delete {path.name} and re-run `mprtune compare`"
            )
        if not same_label(str(record.get("label", "")), row.output):
            raise MprtuneError(
                f"{path}:{number}: prediction belongs to another row (its label is not the output "
                f"of eval row {row.id}): the eval file changed or cutoff_len cut the label; "
                f"re-run `mprtune compare`"
            )
        outputs.append(str(record.get("predict", "")).strip())
    return outputs


def read_timing(folder: Path, rows: int) -> dict[str, Any]:
    """Batched throughput, latency at batch 1, output tokens/s and memory, with the slot's resources."""
    results = json.loads((folder / "predict_results.json").read_text())
    try:
        measure = json.loads((folder / MEASURE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        measure = {}
    runtime = float(results.get("predict_runtime", 0.0))
    return {
        "seconds_per_sample": runtime / rows if rows else 0.0,
        "samples_per_second": float(results.get("predict_samples_per_second", 0.0)),
        "output_tokens_per_second": measure.get("output_tokens_per_second"),
        "latency": measure.get("latency"),
        "peak_memory_mb": measure.get("peak_memory_mb"),
        "reserved_memory_mb": measure.get("reserved_memory_mb"),
        "memory_kind": measure.get("memory_kind", "rss"),
        "resources": measure.get("resources", ""),
    }


def run_predictions(
    ws: Workspace, variants: list[Variant], executor: Executor, limit: int | None, on_event: Callable[[Event], None]
) -> dict[str, tuple[Path, EvalSet]]:
    """Run (or reuse) every prediction job; returns each spec key's folder and eval rows."""
    not_ready = [v.name for v in variants if not JobPaths(ws.run_dir(v.name)).is_complete("train")]
    if not_ready:
        raise MprtuneError(
            f"not finished training: {', '.join(not_ready)}; run `mprtune train "
            f"{' '.join(not_ready)}` first (`mprtune status` shows where each one is)"
        )
    specs = predict_specs(ws.matrix, variants)
    eval_sets = {spec.key: load_eval_rows(ws, spec.variant, limit) for spec in specs}
    jobs = [predict_job(ws, spec, eval_sets[spec.key], limit) for spec in specs]
    todo = []
    for job in jobs:
        status = JobStatus.read(job.paths.status)
        fresh = status is not None and status.config_sha256 == config_digest(job.config_text)
        if fresh and job.paths.is_complete("predict"):
            on_event(Event("reused", job.name, None, f"same model, adapter, settings and eval rows: {job.folder}"))
            continue
        for stale in (PREDICTIONS, "predict_results.json", MEASURE_FILE):
            (job.folder / stale).unlink(missing_ok=True)
        todo.append(job)
    todo.sort(key=lambda j: -j.estimate_s)
    if todo:
        models = {spec.key: spec.model.name for spec in specs}
        ensure_base_models(ws.matrix, ws.root, sorted({models[job.name.split(":", 1)[1]] for job in todo}))
    final = run_queue(todo, executor, retries=1, on_event=on_event)
    failed = [s for s in final.values() if s.state != "done"]
    if failed:
        raise MprtuneError("prediction failed: " + "; ".join(f"{s.name}: {s.reason} (log {ws.runs})" for s in failed))
    return {spec.key: (job.folder, eval_sets[spec.key]) for spec, job in zip(specs, jobs, strict=False)}
