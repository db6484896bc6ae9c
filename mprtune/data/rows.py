"""A dataset's rows as LLaMA-Factory 0.9.5 reads them: files, JSON arrays, JSON lines, folders, the Hub.

Every row comes with its location (`file:line`, or `hf:org/name[subset]:split:n`) and the
Conversation LLaMA-Factory builds from it (data/converter.py): alpaca rows join instruction and
input with "\\n"; sharegpt rows take a leading system turn (or the system column), earlier
(user, assistant) pairs as history, then the last user turn and the assistant turn after it.
What LLaMA-Factory would choke on or silently drop (a missing column, an unknown role tag, no
assistant turn) is a RowErrorAt naming `file:line: what; how to fix`.

Folders are listed in os.listdir order, as LLaMA-Factory lists them: predictions come back in that
order, so eval rows must too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.config.datasets import effective_columns, effective_tags
from mprtune.config.entities import Dataset
from mprtune.data.sources import BOM, Record, RowError, RowErrorAt, iter_jsonl, parse_json_line
from mprtune.errors import DataError
from mprtune.rows import Conversation

READABLE = (".json", ".jsonl")
LIST_KEYS = ("conversations", "messages")


@dataclass(frozen=True)
class DatasetRow:
    where: str  # file:line
    raw: dict[str, Any]
    conversation: Conversation
    id: str = ""  # set by `row_ids` over the whole dataset (a hash alone is not unique)


def dataset_files(data_dir: Path, ds: Dataset) -> list[Path]:
    """The files of a local dataset (a file, or every file of a folder); DataError when missing."""
    path = data_dir / ds.file
    if path.is_dir():
        files = [path / name for name in os.listdir(path)]
        kinds = {f.suffix.lower() for f in files}
        if len(kinds) > 1:
            raise DataError(f"{path}: files of different types ({', '.join(sorted(kinds))}); LLaMA-Factory refuses it")
        if not files:
            raise DataError(f"{path}: empty folder (datasets.{ds.name}.file)")
        return files
    if not path.is_file():
        raise DataError(f"{path}: file not found (datasets.{ds.name}.file)")
    return [path]


def _json_rows(path: Path) -> Iterator[Record | RowErrorAt]:
    """A JSON array of row objects with the line each starts on; other .json content is read as JSON lines."""
    data = path.read_bytes()
    start = len(BOM) if data.startswith(BOM) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data.count(b"\n", 0, offset) + 1
        yield RowErrorAt(f"{path}:{line}", f"not UTF-8 text (byte offset {offset} of the file); save the file as UTF-8")
        return
    stripped = text.lstrip()
    if not stripped.startswith("["):
        value, problem = parse_json_line(text)
        if problem is None and isinstance(value, dict) and len(stripped.rstrip().splitlines()) > 1:
            yield RowErrorAt(
                f"{path}:1", "expected a JSON array of rows ([{...}, ...]) or one JSON object per line, got one object"
            )
            return
        yield from _jsonl_rows(path)  # `datasets` reads JSON lines in a .json file too
        return
    decoder = json.JSONDecoder()
    pos, line, counted = text.index("[") + 1, 1, 0
    while True:
        pos = _skip_space(text, pos)
        line, counted = line + text.count("\n", counted, pos), pos
        if pos >= len(text):
            yield RowErrorAt(f"{path}:{line}", "not valid JSON: the array is not closed with ]")
            return
        if text[pos] == "]":
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield RowErrorAt(f"{path}:{exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})")
            return
        except (RecursionError, ValueError):
            yield RowErrorAt(f"{path}:{line}", "not valid JSON: nested too deeply or a number with thousands of digits")
            return
        where = f"{path}:{line}"
        yield Record(where, value) if isinstance(value, dict) else RowErrorAt(where, _not_object(value))
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] != "]":
            line += text.count("\n", counted, pos)
            yield RowErrorAt(f"{path}:{line}", "not valid JSON: expected ',' or ']' after a row")
            return


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _not_object(value: Any) -> str:
    return f"expected a JSON object, got {type(value).__name__}"


def _jsonl_rows(path: Path) -> Iterator[Record | RowErrorAt]:
    """data.sources' JSON-lines reader, saying "not a JSON line" as the other data errors do."""
    for found in iter_jsonl(path, str(path)):
        if isinstance(found, RowErrorAt) and found.message.startswith("invalid JSON: "):
            found = RowErrorAt(found.where, "not a JSON line: " + found.message.removeprefix("invalid JSON: "))
        yield found


def hub_records(ds: Dataset) -> Iterator[Record]:
    """A Hub dataset's rows through `datasets` (imported only here); offline, one line that says what to do."""
    from mprtune.data.sources import load_hf

    split = ds.split or "train"
    label = f"hf:{ds.hf_hub_url}" + (f"[{ds.subset}]" if ds.subset else "") + f":{split}"
    try:
        rows = load_hf(ds.hf_hub_url, ds.subset or None, split, streaming=True)
    except DataError as exc:
        reason = str(exc).split("; download it", 1)[0]
        raise DataError(
            f"datasets.{ds.name}: {reason}; save its rows as JSON lines under the data dir and declare it "
            f"with `file:` instead of `hf_hub_url:`"
        ) from None
    for number, row in enumerate(rows, 1):
        yield Record(f"{label}:{number}", dict(row))


def records(data_dir: Path, ds: Dataset) -> Iterator[Record | RowErrorAt]:
    """Raw rows of a dataset, in LLaMA-Factory's order; DataError for a whole-dataset problem."""
    if ds.hf_hub_url and not ds.file:
        yield from hub_records(ds)
        return
    if not ds.file:
        raise DataError(f"datasets.{ds.name}: mprtune reads only local files and Hugging Face Hub datasets")
    for path in dataset_files(data_dir, ds):
        suffix = path.suffix.lower()
        if suffix not in READABLE:
            raise DataError(f"{path}: mprtune reads only .json and .jsonl rows (datasets.{ds.name})")
        yield from (_json_rows(path) if suffix == ".json" else _jsonl_rows(path))


# --------------------------------------------------------------------------- conversations


def _text(ds: Dataset, raw: dict[str, Any], role: str, key: str | None, required: bool = False) -> str:
    if key is None:
        return ""
    value = raw.get(key)
    if value is None:
        if required:
            raise RowError(f"no {key!r} field (datasets.{ds.name}.columns.{role}){_looks_like(ds, raw)}")
        return ""
    if not isinstance(value, str):
        raise RowError(f"{key!r} (columns.{role}) must be a string, got {type(value).__name__}")
    return value


def _looks_like(ds: Dataset, raw: dict[str, Any]) -> str:
    """A hint when the row is in the other format (the most common mistake: sharegpt declared as alpaca)."""
    listed = next((k for k in LIST_KEYS if isinstance(raw.get(k), list)), None)
    if ds.formatting == "alpaca" and listed:
        return f"; the row looks like sharegpt ({listed!r} holds turns): set datasets.{ds.name}.formatting: sharegpt"
    if ds.formatting != "alpaca" and listed:
        return f"; the row holds its turns in {listed!r}: set datasets.{ds.name}.columns.messages: {listed}"
    if ds.formatting != "alpaca" and isinstance(raw.get("instruction"), str):
        return f"; the row looks like alpaca ('instruction'): set datasets.{ds.name}.formatting: alpaca"
    keys = ", ".join(list(raw)[:6])
    return f"; the row has: {keys}" if keys else "; the row is empty"


def alpaca(ds: Dataset, raw: dict[str, Any]) -> Conversation:
    cols = effective_columns(ds)
    prompt = _text(ds, raw, "prompt", cols.get("prompt"), required=True)
    query = _text(ds, raw, "query", cols.get("query"))
    response = _text(ds, raw, "response", cols.get("response"), required=True)
    history: list[tuple[str, str]] = []
    if cols.get("history") and raw.get(cols["history"]) is not None:
        turns = raw[cols["history"]]
        if not isinstance(turns, list) or not all(
            isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in turns
        ):
            raise RowError(f"{cols['history']!r} (columns.history) must be a list of [user, assistant] string pairs")
        history = [(t[0], t[1]) for t in turns]
    user = "\n".join(part for part in (prompt, query) if part)
    if not user:
        raise RowError(f"empty user turn ({cols.get('prompt')!r} and {cols.get('query')!r} are empty)")
    return Conversation(user, response, _text(ds, raw, "system", cols.get("system")), tuple(history))


def sharegpt(ds: Dataset, raw: dict[str, Any]) -> Conversation:
    cols, tags = effective_columns(ds), effective_tags(ds)
    key = cols.get("messages", "conversations")
    turns = raw.get(key)
    if not isinstance(turns, list):
        got = "no" if turns is None else f"a {type(turns).__name__} in"
        raise RowError(f"{got} {key!r} field of turns (datasets.{ds.name}.columns.messages){_looks_like(ds, raw)}")
    role_k, content_k = tags.get("role_tag", "from"), tags.get("content_tag", "value")
    for number, turn in enumerate(turns, 1):
        if (
            not isinstance(turn, dict)
            or not isinstance(turn.get(role_k), str)
            or not isinstance(turn.get(content_k), str)
        ):
            hint = ""
            if isinstance(turn, dict) and "role" in turn and "content" in turn:
                hint = f"; set datasets.{ds.name}.tags: {{role_tag: role, content_tag: content, ...}}"
            raise RowError(f"turn {number}: expected an object with string {role_k!r} and {content_k!r}{hint}")
    system_tag = tags.get("system_tag")
    skipped = bool(system_tag and turns and turns[0][role_k] == system_tag)
    if skipped:
        system, turns = turns[0][content_k], turns[1:]
    else:
        system = _text(ds, raw, "system", cols.get("system"))
    user_tags = [t for t in (tags.get("user_tag"), tags.get("observation_tag")) if t]
    assistant_tags = [t for t in (tags.get("assistant_tag"), tags.get("function_tag")) if t]
    shown = ", ".join(f"{k} {v!r}" for k, v in tags.items() if k not in ("role_tag", "content_tag"))
    for index, turn in enumerate(turns):
        role = turn[role_k]
        if role not in user_tags + assistant_tags:
            raise RowError(
                f"turn {index + 1 + skipped}: unknown role {role!r} (tags: {shown}); "
                f"set datasets.{ds.name}.tags to the roles the rows use"
            )
        if role not in (user_tags if index % 2 == 0 else assistant_tags):
            want = "a user" if index % 2 == 0 else "an assistant"
            raise RowError(
                f"turn {index + 1 + skipped}: {role!r} where {want} turn is due; LLaMA-Factory skips this row"
            )
    if not turns or len(turns) % 2:
        raise RowError("no assistant turn after the last user turn; LLaMA-Factory skips this row")
    pairs = tuple((turns[i][content_k], turns[i + 1][content_k]) for i in range(0, len(turns) - 2, 2))
    return Conversation(turns[-2][content_k], turns[-1][content_k], system, pairs)


def conversation(ds: Dataset, raw: dict[str, Any]) -> Conversation:
    """The row as LLaMA-Factory turns it into a prompt; RowError (no location) when it cannot."""
    return alpaca(ds, raw) if ds.formatting == "alpaca" else sharegpt(ds, raw)


def iter_rows(data_dir: Path, ds: Dataset) -> Iterator[DatasetRow | RowErrorAt]:
    """Every row with its Conversation, or the RowErrorAt saying why LLaMA-Factory cannot use it."""
    for record in records(data_dir, ds):
        if isinstance(record, RowErrorAt):
            yield record
            continue
        try:
            yield DatasetRow(record.where, record.fields, conversation(ds, record.fields))
        except RowError as exc:
            yield RowErrorAt(record.where, str(exc))


def row_ids(ds: Dataset, rows: list[DatasetRow]) -> list[str]:
    """Stable ids: the row's id field if it has one, else a hash of its conversation; duplicates get ~2, ~3."""
    seen: dict[str, int] = {}
    ids = []
    for row in rows:
        value = row.raw.get(ds.id_column)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            base = str(value)
        else:
            c = row.conversation
            text = json.dumps([c.system, c.history, c.user, c.assistant], ensure_ascii=False)
            base = hashlib.sha256(text.encode()).hexdigest()[:12]
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}~{seen[base]}")
    return ids


def content_sha256(data_dir: Path, ds: Dataset) -> str | None:
    """sha256 of what LLaMA-Factory will read (file bytes, with names for a folder); None when absent.

    A Hub dataset is identified by its id, subset and split: its content is not ours to fingerprint.
    """
    digest = hashlib.sha256()
    if not ds.file:
        digest.update(json.dumps([ds.hf_hub_url, ds.subset, ds.split]).encode())
        return digest.hexdigest()
    try:
        files = dataset_files(data_dir, ds)
    except DataError:
        return None
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered while its size and mtime stay (plan asks once per variant)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_DIGESTS[key] = digest.hexdigest()
    return _FILE_DIGESTS[key]
