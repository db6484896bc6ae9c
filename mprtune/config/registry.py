"""dataset_info.json, the registry LLaMA-Factory finds datasets through: rendered, imported, never clobbered.

- A declared dataset becomes the entry LLaMA-Factory 0.9.5 reads (config/datasets.py names the keys).
- An imported one (`dataset_info: PATH`) is copied from its registry as it is; only `file_name` is
  rewritten so that it still points at the same file from the data dir.
- mprtune writes a registry only where none is, or where its own (the `_comment` marker) is. A
  foreign one is left byte-identical: render stops with one line saying how to import it instead,
  unless every dataset of the matrix is imported from it, in which case it is used as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from mprtune.config.datasets import COLUMNS, SHAREGPT_COLUMNS, SHAREGPT_TAGS, effective_columns, effective_tags, inside
from mprtune.config.entities import Dataset, Matrix
from mprtune.errors import show
from mprtune.paths import DATASET_INFO

MARKER = "Rendered by `mprtune render`"


def is_ours(info: Any) -> bool:
    """A parsed registry that mprtune rendered (its `_comment` starts with the marker)."""
    return isinstance(info, dict) and str(info.get("_comment", "")).startswith(MARKER)


def read_registry(path: Path) -> tuple[dict | None, str | None]:
    """(parsed registry, None), or (None, what is wrong with it)."""
    try:
        info = json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        return None, "file not found"
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte offset {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno}: invalid JSON: {exc.msg}"
    except (OSError, ValueError, RecursionError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    if not isinstance(info, dict):
        return None, f"expected a JSON object of dataset entries, got {type(info).__name__}"
    return info, None


def lf_entry(ds: Dataset) -> dict[str, Any]:
    """The dataset_info.json entry of a declared dataset, every column role and tag spelled out."""
    entry: dict[str, Any] = {}
    if ds.file:
        entry["file_name"] = ds.file
    else:
        entry["hf_hub_url"] = ds.hf_hub_url
        entry.update({k: v for k, v in (("subset", ds.subset), ("split", ds.split)) if v})
    entry["formatting"] = ds.formatting
    entry["columns"] = effective_columns(ds)
    if ds.tags:  # a partial `tags` mapping would reset LLaMA-Factory's other tags to None
        entry["tags"] = effective_tags(ds)
    return entry


def entry_dataset(name: str, entry: dict[str, Any], base: str, template: Dataset) -> Dataset:
    """The imported entry as LLaMA-Factory reads it, its file relative to the data dir.

    A `columns`/`tags` mapping in an entry resets every role it omits to None (data/parser.py), so
    the omitted ones are recorded as None here, not as the defaults.
    """
    formatting = entry.get("formatting", "alpaca")
    roles = COLUMNS.get(formatting, SHAREGPT_COLUMNS)
    columns = {r: entry["columns"].get(r) for r in roles} if isinstance(entry.get("columns"), dict) else {}
    tags = {t: entry["tags"].get(t) for t in SHAREGPT_TAGS} if isinstance(entry.get("tags"), dict) else {}
    file = entry.get("file_name")
    return replace(
        template,
        name=name,
        file=str(PurePosixPath(base, file)) if isinstance(file, str) else "",
        formatting=formatting if isinstance(formatting, str) else "alpaca",
        columns=columns,
        tags=tags,
        hf_hub_url=entry.get("hf_hub_url", "") if isinstance(entry.get("hf_hub_url"), str) else "",
        subset=entry.get("subset") or "",
        split=entry.get("split") or "",
    )


@dataclass(frozen=True)
class Registry:
    """What the matrix's datasets resolve to in one data dir."""

    datasets: dict[str, Dataset]  # every dataset as LLaMA-Factory reads it (imports resolved)
    entries: dict[str, dict[str, Any]]  # the dataset_info.json entries, by dataset name
    as_is: bool  # every dataset comes from the data dir's own foreign registry: mprtune writes none
    problems: list[str]


def resolve(matrix: Matrix, data_dir: Path) -> Registry:
    """Imports read from `data_dir`; problems as `datasets.<name>.<key>: ...` lines."""
    problems: list[str] = []
    own, _ = read_registry(data_dir / DATASET_INFO)
    imports_own = [d for d in matrix.datasets.values() if d.dataset_info == DATASET_INFO]
    as_is = bool(matrix.datasets) and len(imports_own) == len(matrix.datasets) and not is_ours(own)
    cache: dict[str, tuple[dict | None, str | None]] = {}
    datasets: dict[str, Dataset] = {}
    entries: dict[str, dict[str, Any]] = {}
    for ds in matrix.datasets.values():
        if not ds.imported:
            datasets[ds.name], entries[ds.name] = ds, lf_entry(ds)
            continue
        where = f"datasets.{ds.name}"
        shown = f"{matrix.data_dir}/{ds.dataset_info}"
        info, problem = cache.setdefault(ds.dataset_info, read_registry(data_dir / ds.dataset_info))
        if info is None:
            problems.append(f"{where}.dataset_info: {shown}: {problem}")
            continue
        if is_ours(info) and ds.dataset_info == DATASET_INFO:
            problems.append(
                f"{where}.dataset_info: {shown} is the registry mprtune renders from this matrix; "
                f"declare the dataset here instead (file:, formatting:, columns:)"
            )
            continue
        entry = info.get(ds.entry_name)
        if not isinstance(entry, dict):
            known = [k for k in info if not k.startswith("_")]
            what = "no entry" if entry is None else "not an object:"
            hint = f"; its entries: {', '.join(known[:8])}{', ...' if len(known) > 8 else ''}" if known else ""
            problems.append(f"{where}.entry: {shown} has {what} {show(ds.entry_name)}{hint}")
            continue
        if as_is and ds.entry_name != ds.name:
            problems.append(
                f"{where}.entry: {shown} is used as it is, so LLaMA-Factory looks the dataset up by its "
                f"name: rename datasets.{ds.name} to {ds.entry_name!r} (and drop `entry`)"
            )
            continue
        base = str(PurePosixPath(ds.dataset_info).parent)
        entry = dict(entry)
        if isinstance(entry.get("file_name"), str):
            if not inside(entry["file_name"]):
                problems.append(
                    f"{where}: {shown}: {ds.entry_name}.file_name {show(entry['file_name'])} leaves its folder; "
                    f"mprtune reads only files inside the data dir"
                )
                continue
            entry["file_name"] = str(PurePosixPath(base, entry["file_name"]))
        datasets[ds.name], entries[ds.name] = entry_dataset(ds.name, entry, ".", ds), entry
    return Registry(datasets, entries, as_is, problems)


def registry_lines(entries: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(quoted name, one `"key": value` line per entry key), sorted by name, for dataset_info.json.j2.

    JSON-quoted here, in order: the template's tojson would sort the keys of every column mapping.
    """
    quote = lambda value: json.dumps(value, ensure_ascii=False)  # noqa: E731
    return [(quote(n), [f"    {quote(k)}: {quote(v)}" for k, v in entries[n].items()]) for n in sorted(entries)]


def foreign_problem(label: str) -> str:
    return (
        f"{label}: not written by mprtune (its _comment does not start with {MARKER!r}), so render leaves it as it "
        f"is; import its entries instead (datasets.NAME: {{dataset_info: {DATASET_INFO}, entry: NAME}}), "
        f"or move it into a subfolder and import from there"
    )


def registry_paths(matrix: Matrix) -> list[str]:
    """Where the registry goes: the data dir of the matrix and of every profile (jobs read it there)."""
    return [f"{d.rstrip('/')}/{DATASET_INFO}" for d in (matrix.data_dirs or (matrix.data_dir,))]


def writable(out: Path, path: str) -> str | None:
    """None when mprtune may write `out/path`, else the one line saying why not."""
    target = out / path
    if not target.exists():
        return None
    info, _ = read_registry(target)
    return None if is_ours(info) else foreign_problem(str(target))
