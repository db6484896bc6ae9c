"""The matrix's datasets as jobs will read them: resolved imports, rows with ids, checks before launch.

Public API (the evaluate layer reads eval rows through it):

- `resolved_dataset(ws, name) -> Dataset`: imports resolved against the profile's data dir.
- `read_rows(ws, name, limit=None) -> list[DatasetRow]`: (where, raw, conversation, id) per row
  in LLaMA-Factory's order; DataError naming `file:line` at the first row it cannot use.
- `training_data_sha256(ws, names) -> str | None`: the fingerprint of a run's training data.
- `data_problems(ws, variants) -> list[str]`: every problem of every dataset the variants use,
  collected (a few per dataset), for `plan` and `train` to refuse bad data before launching.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mprtune.config.datasets import OPTIONAL_COLUMNS, effective_columns
from mprtune.config.entities import Dataset, Task, Variant
from mprtune.config.registry import Registry, resolve
from mprtune.data.rows import DatasetRow, content_sha256, dataset_files, iter_rows, row_ids
from mprtune.data.sources import RowErrorAt
from mprtune.errors import ConfigError, DataError, MprtuneError
from mprtune.workspace import Workspace

SHOWN_PER_DATASET = 5  # bad rows listed per dataset; the rest are counted on one line


def registry(ws: Workspace) -> Registry:
    found = resolve(ws.matrix, ws.data_dir)
    if found.problems:
        raise ConfigError(found.problems, str(ws.matrix.source.name))
    return found


def resolved_dataset(ws: Workspace, name: str) -> Dataset:
    return registry(ws).datasets[name]


def read_rows(ws: Workspace, name: str, limit: int | None = None) -> list[DatasetRow]:
    """The rows of one dataset with stable ids; `limit` keeps the first N (LLaMA-Factory's max_samples)."""
    ds = resolved_dataset(ws, name)
    rows: list[DatasetRow] = []
    for row in iter_rows(ws.data_dir, ds):
        if limit is not None and len(rows) >= limit:
            break
        if isinstance(row, RowErrorAt):
            raise DataError(f"{row.where}: {row.message}")
        rows.append(row)
    return [DatasetRow(r.where, r.raw, r.conversation, i) for r, i in zip(rows, row_ids(ds, rows), strict=True)]


def training_data_sha256(ws: Workspace, names: Iterable[str]) -> str | None:
    """One sha256 over the training datasets' content (None when any is missing or unresolvable)."""
    try:
        found = registry(ws)
    except MprtuneError:
        return None
    digest = hashlib.sha256()
    for name in names:
        part = content_sha256(ws.data_dir, found.datasets[name])
        if part is None:
            return None
        digest.update(f"{name}\0{part}\0".encode())
    return digest.hexdigest()


def _is_local(ds: Dataset) -> bool:
    return bool(ds.file)


def _present(data_dir: Path, ds: Dataset) -> bool:
    return (data_dir / ds.file).exists()


def _eval_problem(task: Task, row: DatasetRow) -> str | None:
    """Why an eval row gives its task no source or no reference (None when it does): the kind reads it."""
    try:
        task.plugin.eval_row(row.raw, row.conversation, row.where, row.id or "row")
    except MprtuneError as exc:
        return str(exc).removeprefix(f"{row.where}: ")
    return None


def _dataset_problems(data_dir: Path, ds: Dataset, tasks: list[Task]) -> list[str]:
    shown: list[str] = []
    hidden = 0
    seen_keys: set[str] = set()
    rows = 0
    try:
        for row in iter_rows(data_dir, ds):
            problem = None
            if isinstance(row, RowErrorAt):
                problem = f"{row.where}: {row.message}"
            else:
                rows += 1
                seen_keys.update(row.raw)
                why = next((w for t in tasks if (w := _eval_problem(t, row))), None)
                problem = f"{row.where}: {why}" if why else None
            if problem and len(shown) < SHOWN_PER_DATASET:
                shown.append(problem)
            elif problem:
                hidden += 1
    except DataError as exc:
        return [str(exc)]
    if hidden:
        shown.append(f"datasets.{ds.name}: {hidden} more bad rows like these in {data_dir / ds.file}")
    if not rows and not shown:
        shown.append(f"{data_dir / ds.file}: no rows (datasets.{ds.name}); LLaMA-Factory cannot use an empty dataset")
    return shown + _missing_columns(data_dir, ds, seen_keys, rows)


def _missing_columns(data_dir: Path, ds: Dataset, seen: set[str], rows: int) -> list[str]:
    """Optional columns no row has: LLaMA-Factory looks them up in every row (KeyError)."""
    if not rows:
        return []
    out = []
    for role, key in effective_columns(ds).items():
        if role in OPTIONAL_COLUMNS and key not in seen:
            out.append(
                f"{data_dir / ds.file}: no row has {key!r} (datasets.{ds.name}.columns.{role}); LLaMA-Factory "
                f"fails with KeyError: {key!r}: set columns.{role} to the key the rows use, or null if they have none"
            )
    return out


def data_problems(ws: Workspace, variants: list[Variant]) -> list[str]:
    """Every problem of the local datasets the variants train and evaluate on, `file:line: what` each.

    Files not prepared yet are left to `data_warnings`; Hub datasets are read by LLaMA-Factory
    (checking them here would mean downloading them).
    """
    found = registry(ws)
    uses: dict[str, list[Task]] = {}
    for variant in variants:
        for name in variant.task.train:
            uses.setdefault(name, [])
        for name in variant.task.eval:
            tasks = uses.setdefault(name, [])
            if variant.task not in tasks:
                tasks.append(variant.task)
    problems: list[str] = []
    for name in sorted(uses):
        ds = found.datasets[name]
        if _is_local(ds) and _present(ws.data_dir, ds):
            problems += _dataset_problems(ws.data_dir, ds, uses[name])
    return problems


def dataset_size(ws: Workspace, name: str) -> tuple[int, int] | None:
    """(characters of every turn, rows) of a local dataset for the planner; None when it is not on disk."""
    try:
        ds = resolved_dataset(ws, name)
    except MprtuneError:
        return None
    if not _is_local(ds) or not _present(ws.data_dir, ds):
        return None
    files = dataset_files(ws.data_dir, ds)
    key = (ds, tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if key not in _SIZES:
        _SIZES[key] = _size(ws.data_dir, ds)
    return _SIZES[key]


_SIZES: dict[tuple[Any, ...], tuple[int, int]] = {}  # the planner asks once per variant and finished run


def _size(data_dir: Path, ds: Dataset) -> tuple[int, int]:
    chars = rows = 0
    for row in iter_rows(data_dir, ds):
        if isinstance(row, RowErrorAt):
            raise DataError(f"{row.where}: {row.message}")
        c = row.conversation
        chars += len(c.user) + len(c.assistant) + len(c.system) + sum(len(u) + len(a) for u, a in c.history)
        rows += 1
    return chars, rows


def describe(ds: Dataset) -> dict[str, Any]:
    """What a report or a model card says about a dataset."""
    source = ds.file or f"hf:{ds.hf_hub_url}"
    licence = ds.licence
    return {
        "dataset": ds.name,
        "source": source,
        "formatting": ds.formatting,
        "licence": None
        if licence is None
        else {"name": licence.name, "url": licence.url, "non_commercial": licence.non_commercial},
    }
