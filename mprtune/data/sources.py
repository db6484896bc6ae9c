"""Reading raw corpora for `mprtune prepare-data`: text lines, JSONL, TSV and the Hugging Face Hub.

Every reader yields a Record per usable row or a RowErrorAt naming `file:line` and what is wrong,
so a damaged row is one bad row (fatal, or counted with --skip-bad), never a traceback:

- Text is decoded line by line as UTF-8; a UTF-8 BOM on the first line (what some editors write)
  is dropped, so a TSV header still shows `id` and no eval row starts with U+FEFF. A line with
  bytes that are not UTF-8 is a bad row naming its byte offset in the file.
- JSON lines nested absurdly deep or holding numbers with thousands of digits are bad rows.
- TSV fields longer than csv's limit (131072 characters) are bad rows, not a crash.
- The Hub is probed before `datasets` is called: offline, an unreachable network is one line
  that says so and points to --source PATH.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import sys
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.errors import DataError

BOM = b"\xef\xbb\xbf"
# What `datasets` says when it could not reach the Hub (it wraps the network error in others).
NETWORK_SIGNS = ("OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectError", "ProxyError", "ConnectionError")
HUB_PROBE_S = 5.0  # seconds to wait for a TCP connection to the Hub before calling it unreachable


class RowError(Exception):
    """Raised by a row parser: the message says what is wrong, the caller adds `file:line`."""


@dataclass(frozen=True)
class Record:
    where: str  # "path:line" (or "hf:name[split]:row")
    fields: dict[str, Any]


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: file not found ({what})")
    return path


def text_lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) per physical line, decoded one by one; the BOM of line 1 is dropped.

    `problem` names the byte offset of a line that is not UTF-8 (its text then has U+FFFD in place
    of the bad bytes), so one bad byte is one bad row, not a crash of the whole file.
    """
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            start = 0
            if number == 1 and raw.startswith(BOM):
                start = len(BOM)
            problem = None
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as exc:
                text = raw[start:].decode("utf-8", errors="replace")
                problem = (
                    f"not UTF-8 text (byte offset {offset + start + exc.start} of the file); save the file as UTF-8"
                )
            yield number, text, problem
            offset += len(raw)


def parse_json_line(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, what is wrong) for a line that is not JSON mprtune can use."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    except ValueError:  # an integer with more digits than Python converts (4300)
        return None, "invalid JSON: a number with thousands of digits"


def iter_jsonl(path: Path, label: str) -> Iterator[Record | RowErrorAt]:
    """Stream a JSONL file: one Record per non-blank line, or a RowErrorAt for an invalid one."""
    for number, line, problem in text_lines(path):
        if not line.strip():
            continue
        where = f"{label}:{number}"
        if problem:
            yield RowErrorAt(where, problem)
            continue
        value, problem = parse_json_line(line)
        if problem:
            yield RowErrorAt(where, problem)
        elif not isinstance(value, dict):
            yield RowErrorAt(where, f"expected a JSON object, got {type(value).__name__}")
        else:
            yield Record(where, value)


@dataclass(frozen=True)
class RowErrorAt:
    """A bad row found while reading (before any parser saw it)."""

    where: str
    message: str


def _unquote(field_text: str) -> str:
    """`"a ""b"" c"` -> `a "b" c` when the field is one complete CSV-quoted string, else unchanged."""
    if len(field_text) >= 2 and field_text[0] == '"' and field_text[-1] == '"':
        inner = field_text[1:-1]
        if '"' not in inner.replace('""', ""):
            return inner.replace('""', '"')
    return field_text


def iter_tsv(path: Path, label: str, required: tuple[str, ...], unquote: bool = False) -> Iterator[Record | RowErrorAt]:
    """Stream a TSV with a header line using csv with ``quoting=csv.QUOTE_NONE``.

    Quotes are text (GLUE/PAWS layout). With ``unquote`` (QQP) a field that is one complete
    CSV-quoted string is unquoted too, and a quoted field holding a newline (the Quora dump
    layout) is joined back with the next physical line(s), up to 8 lines.
    """
    problems: dict[int, str] = {}  # line number -> why it is not UTF-8

    def lines() -> Iterator[str]:
        for number, text, problem in text_lines(path):
            if problem:
                problems[number] = problem
            yield text

    reader = csv.reader(lines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = _header(reader, label, required, problems)
    width = len(header)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over csv's limit (131072 characters), a stray carriage return
            yield RowErrorAt(f"{label}:{start}", _csv_problem(exc))
            continue
        if not fields or fields == [""]:
            continue
        joins = 0
        while (
            unquote
            and len(fields) < width
            and fields[-1].startswith('"')
            and fields[-1].count('"') % 2 == 1
            and joins < 8
        ):
            try:
                more = next(reader)
            except (StopIteration, csv.Error):
                break
            joins += 1
            fields = fields[:-1] + [fields[-1] + "\n" + (more[0] if more else "")] + more[1:]
        where = f"{label}:{start}"
        bad = next((problems[n] for n in range(start, reader.line_num + 1) if n in problems), None)
        if bad:
            yield RowErrorAt(where, bad)
            continue
        if len(fields) != width:
            yield RowErrorAt(where, f"expected {width} tab-separated fields, got {len(fields)}")
            continue
        if unquote:
            fields = [_unquote(f) if f[:1] == '"' else f for f in fields]
        yield Record(where, dict(zip(header, fields, strict=True)))


def _header(reader: Any, label: str, required: tuple[str, ...], problems: dict[int, str]) -> list[str]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(f"{label}:1: empty file (expected a header line with {', '.join(required)})") from None
    except csv.Error as exc:
        raise DataError(f"{label}:1: unreadable header: {_csv_problem(exc)}") from None
    if 1 in problems:
        raise DataError(f"{label}:1: header {problems[1]}")
    missing = [c for c in required if c not in header]
    if missing:
        got = ", ".join(header)
        raise DataError(
            f"{label}:1: missing column {missing[0]!r} in the header "
            f"(expected {', '.join(required)}; got {got if len(got) <= 80 else got[:77] + '...'})"
        )
    return header


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a field is longer than {csv.field_size_limit()} characters (not one sentence: is it the right file?)"
    if "new-line character" in text:
        return "a carriage return (\\r) inside a line; save the file with \\n line ends"
    return f"unreadable TSV line ({text})"


def iter_hf(rows: Iterable[dict[str, Any]], label: str) -> Iterator[Record]:
    for number, row in enumerate(rows, 1):
        yield Record(f"{label}:{number}", dict(row))


def offline_mode() -> str | None:
    """`NAME=value` of the Hugging Face offline switch that is on, else None."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name}={os.environ[name]}"
    return None


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached from here (no route, no name), else None.

    Asked before `datasets` is: its client retries a dead network five times (23 s) and prints a
    warning per retry.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # only the proxy can tell; the download will say
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    try:
        socket.create_connection((host, url.port or (80 if url.scheme == "http" else 443)), timeout=HUB_PROBE_S).close()
    except OSError as exc:
        reason = exc.strerror or ("timed out" if isinstance(exc, TimeoutError) else str(exc))
        return f"the network is unreachable: no connection to the Hugging Face Hub ({host}: {reason})"
    return None


@contextmanager
def _offline(on: bool) -> Iterator[None]:
    """Offline mode for one load (read when `datasets` is imported): the local cache, no retries."""
    saved = {name: os.environ.get(name) for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    if on:
        os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def load_hf(name: str, config: str | None, split: str, streaming: bool = False) -> Iterable[dict[str, Any]]:
    """`datasets.load_dataset` (imported lazily); any failure becomes one DataError line.

    Offline (the switch set, or the Hub unreachable) only the local Hugging Face cache is tried,
    so a dataset downloaded earlier still loads, and anything else fails at once.
    """
    what = f"{name}" + (f" ({config})" if config else "") + f" split {split}"
    instead = "download it where the network works and pass --source PATH (layout: `mprtune prepare-data --help`)"
    switch = offline_mode()
    unreachable = None if switch else hub_unreachable()
    if unreachable and "datasets" in sys.modules:  # its offline switch was read at import: no cache detour
        raise DataError(f"cannot download {what}: {unreachable}; {instead}")
    try:
        with _offline(unreachable is not None):
            import datasets
            from huggingface_hub.utils import logging as hub_logging

            hub_logging.set_verbosity_error()  # no "Retrying in 1s" line per retry
            datasets.logging.set_verbosity_error()
            return datasets.load_dataset(name, config, split=split, streaming=streaming)
    except Exception as exc:  # noqa: BLE001 -- offline, gated, renamed, scripts unsupported: one line
        if switch:
            raise DataError(
                f"cannot download {what}: offline mode is on ({switch}) and it is not in the local "
                f"Hugging Face cache; {instead}"
            ) from None
        if unreachable:
            raise DataError(f"cannot download {what}: {unreachable}; {instead}") from None
        if isinstance(exc, ConnectionError) or any(sign in str(exc) for sign in NETWORK_SIGNS):
            raise DataError(
                f"cannot download {what}: the network is unreachable: no connection to the "
                f"Hugging Face Hub ({_first_line(exc, 100)}); {instead}"
            ) from None
        raise DataError(
            f"cannot load {what} from the Hugging Face Hub: {type(exc).__name__}: {_first_line(exc)}; {instead}"
        ) from None
