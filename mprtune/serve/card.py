"""The model card (README.md) of a variant: base model, recipe, data and licences, metrics, how to serve.

Written by `mprtune export` into the merged-model folder and by `mprtune serve --check` into the run
folder. Everything comes from files: the matrix, the run folder, the data manifest, the latest
report that compared the variant (results.json) and the last serving check. Licences are stated as
their sources state them; where a source is ambiguous the card says "see source". Any non-commercial
data puts a warning at the top.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mprtune.config.matrix import Matrix, Variant
from mprtune.config.render import render_template
from mprtune.errors import MprtuneError
from mprtune.evaluate.presentation import presentation_of
from mprtune.io import atomic_write
from mprtune.tasks.base import DataLicence
from mprtune.workspace import Workspace

CARD_FILE = "README.md"


UNKNOWN = DataLicence("not a corpus mprtune prepares", "unknown: see source", "", False)


def licence_of(matrix: Matrix, dataset: str) -> DataLicence:
    """The licence of a dataset: its preparer's (built-in corpora), else unknown."""
    from mprtune.tasks import BUILTIN_KINDS, resolve_kind

    kinds = [resolve_kind(name) for name in BUILTIN_KINDS] + [type(t.plugin) for t in matrix.tasks.values()]
    found = next((p for kind in kinds for p in kind.preparers if dataset in (p.train, p.eval)), None)
    return found.licence if found else UNKNOWN


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def data_rows(ws: Workspace, variant: Variant) -> list[dict[str, Any]]:
    matrix = ws.matrix
    manifest = (_read_json(ws.data_dir / "manifest.json") or {}).get("files", {})
    rows = []
    for split, names in (("train", variant.task.train), ("eval", variant.task.eval)):
        for name in names:
            dataset = matrix.datasets[name]
            file = dataset.file or dataset.dataset_info or f"hf:{dataset.hf_hub_url}"
            entry = manifest.get(file, {})
            stated = dataset.licence  # the matrix's own word on the user's data comes first
            licence = (
                DataLicence(name, stated.name, stated.url, stated.non_commercial)
                if stated
                else licence_of(matrix, name)
            )
            rows.append(
                {
                    "dataset": name,
                    "split": split,
                    "file": f"{matrix.data_dir}/{file}" if dataset.file else file,
                    "rows": entry.get("rows"),
                    "prepared_from": entry.get("source"),
                    "licence": licence,
                }
            )
    return rows


def comparison(reports: Path, variant: str) -> tuple[Path | None, dict[str, Any] | None, dict[str, Any] | None]:
    """(report folder, the variant's entry of results.json, the metric definitions) of the latest report."""
    from mprtune.serve.records import latest_report

    folder = latest_report(reports, variant)
    if folder is None:
        return None, None, None
    results = _read_json(folder / "results.json") or {}
    entry = next(e for e in results.get("variants", []) if e.get("variant") == variant)
    return folder, entry, results.get("metrics", {})


def metric_rows(entry: dict[str, Any], specs: dict[str, Any]) -> list[list[str]]:
    """The comparison's metrics as the report shows them: one scale per unit, registry verdicts."""
    from mprtune.evaluate.formatting import format_diff, format_stat, label, verdict
    from mprtune.evaluate.report import ordered_metrics

    names = ordered_metrics(
        set(entry["baseline"]["metrics"]) | set(entry["tuned"]["metrics"]),
        presentation_of(entry)["table"],
    )
    rows = []
    for name in names:
        spec = specs.get(name)
        if spec is None or "unit" not in spec:  # a report written before metrics had units
            continue
        base, tuned, diff = (
            entry["baseline"]["metrics"].get(name),
            entry["tuned"]["metrics"].get(name),
            entry["diff"].get(name),
        )
        rows.append(
            [
                label(name),
                format_stat(base, spec["unit"]),
                format_stat(tuned, spec["unit"]),
                format_diff(diff, spec["unit"], verdict(name, base, tuned, diff, spec)),
            ]
        )
    return rows


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def model_card(ws: Workspace, name: str, reports: Path, merged_dir: Path | None = None) -> str:
    """The card's Markdown; `merged_dir` set: the card of an exported (merged) model in that folder."""
    from mprtune.evaluate.formatting import md_cell
    from mprtune.models import resolved_path
    from mprtune.serve.records import read_check
    from mprtune.serve.target import resolve_target

    variant = ws.select([name])[0]
    run = ws.run_dir(name)
    recipe = {k: v for k, v in variant.recipe.items() if k != "extra_args"}
    recipe.update({f"extra_args.{k}": v for k, v in variant.recipe.get("extra_args", {}).items()})
    data = data_rows(ws, variant)
    report, entry, specs = comparison(reports, name)
    try:
        target = resolve_target(ws, name)
    except MprtuneError:  # the card is still useful for a run that cannot be served from here
        target = None
    check = read_check(target) if target is not None else None
    return render_template(
        "model_card.md.j2",
        variant=variant,
        profile=ws.profile,
        recipe=sorted(recipe.items()),
        base_path=resolved_path(variant.model, ws.root),
        run=run,
        training=_read_json(run / "train_results.json") or {},
        data=data,
        restricted=list(
            {
                d["licence"].corpus: d["licence"] for d in data if d["split"] == "train" and d["licence"].restricted
            }.values()
        ),
        report=report,
        entry=entry,
        metrics=metric_rows(entry, specs or {}) if entry else [],
        target=target,
        check=check,
        merged_dir=merged_dir,
        llamafactory=_version("llamafactory"),
        mprtune=_version("mprtune"),
        cell=md_cell,
    )


def write_model_card(
    ws: Workspace, name: str, out_dir: Path, reports: Path | None = None, merged: bool = False
) -> Path:
    path = out_dir / CARD_FILE
    text = model_card(ws, name, reports or ws.reports_dir, out_dir if merged else None)
    atomic_write(path, text)
    return path
