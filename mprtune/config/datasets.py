"""The matrix's `datasets:` entries: what LLaMA-Factory 0.9.5 can read, checked with key paths.

A dataset is a local file or folder (relative to the data dir, never outside it), a Hugging Face
Hub dataset (`hf_hub_url`, `subset`, `split`), or an entry of an existing dataset_info.json
(`dataset_info: PATH`, `entry: NAME`), whose entry is used as it is (config/registry.py).
`formatting`, `columns` and `tags` use LLaMA-Factory's own names (data/parser.py), so an entry can
be copied from its documentation; unknown names get a did-you-mean.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mprtune.config.checks import DATASET_RANGES, DATASET_TYPES, Kind, Problems, did_you_mean, show
from mprtune.config.entities import Dataset, Licence

FORMATTINGS = ("alpaca", "sharegpt")
# LLaMA-Factory's defaults (data/parser.py DatasetAttr); a `columns` or `tags` mapping in
# dataset_info.json resets every role it does not name to None, so mprtune renders them all.
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "system": None, "history": None}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": None}
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
COLUMNS = {"alpaca": ALPACA_COLUMNS, "sharegpt": SHAREGPT_COLUMNS}
# Roles whose column may be switched off with null (LLaMA-Factory reads them only when set).
OPTIONAL_COLUMNS = {"query", "system", "history"}
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
ROW_KEY_MAX = 200
SOURCES = ("file", "hf_hub_url", "dataset_info")
IMPORT_KEYS = {"dataset_info", "entry", "licence", "rows", "id_column"}


def inside(path: str) -> bool:
    """A relative path that stays inside its folder (no absolute path, no `..`, no NUL, short parts)."""
    parts = Path(path).parts
    return (
        bool(path)
        and not Path(path).is_absolute()
        and ".." not in parts
        and "\0" not in path
        and all(len(part.encode("utf-8", "surrogateescape")) <= 255 for part in parts)
    )


def _row_key(p: Problems, path: str, value: Any, nullable: bool) -> bool:
    if value is None and nullable:
        return True
    if not isinstance(value, str) or not value or len(value) > ROW_KEY_MAX:
        what = "a row key (a non-empty string)" + (" or null (the rows have none)" if nullable else "")
        p.add(path, f"expected {what}, got {show(value)}")
        return False
    return True


def _roles(p: Problems, path: str, given: Any, known: dict[str, Any], nullable: set[str], noun: str = "role") -> dict:
    """`columns:` or `tags:` checked against LLaMA-Factory's role names."""
    out = {}
    for role, key in given.items():
        if role not in known:
            p.add(
                f"{path}.{show(role) if not isinstance(role, str) else role}",
                f"unknown {noun}" + did_you_mean(role, known),
            )
        elif _row_key(p, f"{path}.{role}", key, role in nullable):
            out[role] = key
    return out


def _licence(p: Problems, path: str, value: Any) -> Licence | None:
    if isinstance(value, str):
        if not value.strip():
            p.add(path, "expected the licence's name, e.g. CC-BY-4.0")
            return None
        return Licence(value.strip())
    if not isinstance(value, dict):
        return None
    types: dict[str, Kind] = {"name": str, "url": str, "non_commercial": bool}
    for key in value:
        if key not in types:
            p.add(f"{path}.{key}", "unknown key" + did_you_mean(key, types))
    checked = p.check_mapping(path, {k: v for k, v in value.items() if k in types}, types, required=("name",))
    url = checked.get("url", "")
    if isinstance(url, str) and url and not url.startswith(("https://", "http://")):
        p.add(f"{path}.url", f"expected an http(s) address, got {show(url)}")
    if all(isinstance(checked.get(k, d), t) for k, d, t in (("name", None, str), ("url", "", str))):
        return Licence(checked["name"], checked.get("url", ""), checked.get("non_commercial", False) is True)
    return None


def _check_source(p: Problems, path: str, spec: dict) -> None:
    """The one source (file, hub id, imported registry) and the keys that go with it."""
    file, url, info = spec.get("file", ""), spec.get("hf_hub_url", ""), spec.get("dataset_info", "")
    if file and not inside(file):
        p.add(f"{path}.file", f"must be a relative path inside the data dir, got {show(file)}")
    if url and not HUB_ID.match(url):
        p.add(f"{path}.hf_hub_url", f"expected a Hub dataset id such as org/name, got {show(url)}")
    for key in ("subset", "split"):
        if key in spec and not url:
            p.add(f"{path}.{key}", "only a Hub dataset (hf_hub_url) has subsets and splits")
        elif key in spec and not re.match(r"^[A-Za-z0-9_.\-\[\]:%+]{1,100}$", spec[key]):
            p.add(f"{path}.{key}", f"expected a {key} name, got {show(spec[key])}")
    if info:
        if not inside(info) or not info.endswith(".json"):
            p.add(f"{path}.dataset_info", f"expected a .json file inside the data dir, got {show(info)}")
        for key in sorted(set(spec) - IMPORT_KEYS):
            p.add(f"{path}.{key}", "an imported entry is used as it is: set it in the dataset_info.json it comes from")
    elif "entry" in spec:
        p.add(f"{path}.entry", "only an imported dataset (dataset_info: PATH) has an entry")


def parse_dataset(p: Problems, name: str, spec: Any) -> Dataset | None:
    """One `datasets.<name>` entry, or None after adding its problems to `p`."""
    path = f"datasets.{name}"
    if not isinstance(spec, dict):
        p.add(path, f"expected a mapping such as {{file: {name}.jsonl}}, got {show(spec)}")
        return None
    before = len(p.items)
    for key in spec:
        if key not in DATASET_TYPES:
            p.add(f"{path}.{key}", "unknown key" + did_you_mean(key, DATASET_TYPES))
    spec = p.check_mapping(
        path, {k: v for k, v in spec.items() if k in DATASET_TYPES}, DATASET_TYPES, (), DATASET_RANGES
    )
    sources = [key for key in SOURCES if key in spec]
    if len(sources) != 1:
        given = " and ".join(sources) if sources else "none"
        p.add(path, f"give exactly one of file, hf_hub_url, dataset_info (got {given})")
    if len(p.items) > before:
        return None
    _check_source(p, path, spec)
    formatting = spec.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        p.add(f"{path}.formatting", f"expected one of {', '.join(FORMATTINGS)}, got {show(formatting)}")
        return None
    columns = _roles(p, f"{path}.columns", spec.get("columns", {}), COLUMNS[formatting], OPTIONAL_COLUMNS)
    tags: dict = {}
    if "tags" in spec:
        if formatting != "sharegpt":
            p.add(f"{path}.tags", "only sharegpt datasets have role tags (set formatting: sharegpt)")
        tags = _roles(p, f"{path}.tags", spec["tags"], SHAREGPT_TAGS, set(), "tag")
    if "id_column" in spec:
        _row_key(p, f"{path}.id_column", spec["id_column"], False)
    licence = _licence(p, f"{path}.licence", spec["licence"]) if "licence" in spec else None
    if len(p.items) > before:
        return None
    return Dataset(
        name,
        file=spec.get("file", ""),
        rows=spec.get("rows"),
        formatting=formatting,
        columns=columns,
        tags=tags,
        hf_hub_url=spec.get("hf_hub_url", ""),
        subset=spec.get("subset", ""),
        split=spec.get("split", ""),
        licence=licence,
        dataset_info=spec.get("dataset_info", ""),
        entry=spec.get("entry", ""),
        id_column=spec.get("id_column", "id"),
    )


def effective_columns(ds: Dataset) -> dict[str, str]:
    """Column role -> row key as LLaMA-Factory will read it (defaults filled, switched-off roles dropped)."""
    merged = {**COLUMNS[ds.formatting], **ds.columns}
    return {role: key for role, key in merged.items() if key is not None}


def effective_tags(ds: Dataset) -> dict[str, str]:
    merged = {**SHAREGPT_TAGS, **ds.tags} if ds.formatting != "alpaca" else {}
    return {tag: value for tag, value in merged.items() if value is not None}
