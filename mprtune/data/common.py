"""Shared plumbing of `mprtune prepare-data`: streaming readers, bad rows, staged writers, manifest.

Definitions used by every corpus module:

- A *record* is one raw input row: its location (`file:line`, 1-based physical line of the file,
  or the 1-based row number of a Hugging Face split) and its fields.
- A *bad row* is a record that cannot be used as it is: invalid JSON, a missing column or field,
  an empty text, a label other than 0/1, no reference/answer. Without --skip-bad the first one
  raises ``DataError("file:line: what is wrong")``; with --skip-bad it is skipped and counted.
  Problems of a whole file (missing file, missing header column, reference files of unequal
  length) always raise. Rows are validated as far as they are used: a QQP non-duplicate with an
  empty question is ignored like any other non-duplicate.
- A *prepared row* is one alpaca JSONL line: ``{"id", "instruction", "input": "", "output", ...}``.
- Text files are read as UTF-8 line by line: a UTF-8 BOM (what some editors write) is dropped, and
  a line with bytes that are not UTF-8 is a bad row naming `file:line` and its byte offset.
- Writes are staged: every output goes to a temporary file in the output folder and all of them
  replace their targets (os.replace) only when the whole run succeeded; on any error the previous
  files stay byte-identical and the temporaries are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprtune.data.sources import Record, RowError, RowErrorAt
from mprtune.errors import DataError, show
from mprtune.io import publish

MANIFEST_FILE = "manifest.json"
MAX_EXAMPLES = 3  # examples of bad / over-long rows kept for the report
FLUSH_ROWS = 1024  # rows measured by the truncation guard per batch


def clean(value: Any, name: str) -> str:
    """A required text field, whitespace-stripped; RowError when missing, not a string, or empty."""
    if value is None:
        raise RowError(f"missing field {name!r}")
    if not isinstance(value, str):
        raise RowError(f"field {name!r} must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise RowError(f"empty text in field {name!r}")
    return text


def label01(value: Any, name: str) -> int:
    """A 0/1 label (int or the strings '0'/'1'); RowError otherwise."""
    text = str(value).strip() if value is not None else ""
    if isinstance(value, bool) or text not in ("0", "1"):
        raise RowError(f"{name} must be 0 or 1, got {show(value)}")
    return int(text)


def norm_key(text: str) -> str:
    """The comparison key for hold-out and de-duplication: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def digest(*parts: str) -> bytes:
    """16-byte hash of a tuple of strings (sets of these stay small for millions of rows)."""
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


@dataclass
class Overlong:
    """One row longer than a variant's cutoff_len."""

    id: str
    tokens: int
    cutoff_len: int
    variants: tuple[str, ...]
    method: str

    def describe(self) -> str:
        return (
            f"{self.id}: {self.tokens} tokens > cutoff_len {self.cutoff_len} "
            f"({', '.join(self.variants)}; {self.method})"
        )


@dataclass
class FileReport:
    """What prepare-data did to one output file (also the body of its manifest entry)."""

    dataset: str
    file: str
    split: str  # train | eval
    prompt: str
    source: str = ""
    rows: int = 0
    sha256: str = ""
    skipped_bad: int = 0
    bad_examples: list[str] = field(default_factory=list)
    dropped_overlong: int = 0
    overlong_examples: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # held-out overlap, duplicates, ...
    length_check: list[str] = field(default_factory=list)  # how lengths were measured, per limit

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "rows": self.rows,
            "sha256": self.sha256,
            "source": self.source,
            "prompt": self.prompt,
            "skipped_bad": self.skipped_bad,
            "dropped_overlong": self.dropped_overlong,
            **{k: self.counters[k] for k in sorted(self.counters)},
            "length_check": self.length_check,
        }


Guard = Callable[[list[dict[str, Any]]], list[Overlong | None]]


class DatasetWriter:
    """Streams prepared rows into a temporary file next to the target; `commit` renames it.

    Rows are buffered FLUSH_ROWS at a time for the truncation guard; identical (instruction, output)
    pairs are written once (counted as `duplicates`) when ``dedupe`` is set.
    """

    def __init__(
        self, target: Path, report: FileReport, guard: Guard | None, on_overlong: str, skip_bad: bool, dedupe: bool
    ) -> None:
        self.target = target
        self.report = report
        self._guard = guard
        self._on_overlong = on_overlong
        self._skip_bad = skip_bad
        self._seen: set[bytes] | None = set() if dedupe else None
        self._buffer: list[dict[str, Any]] = []
        self._hash = hashlib.sha256()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        self.tmp = Path(tmp)
        self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self.closed = False

    def bad(self, where: str, message: str) -> None:
        """A bad input row feeding this file: raise, or with --skip-bad count and go on."""
        text = f"{where}: {message}"
        if not self._skip_bad:
            raise DataError(text)
        self.report.skipped_bad += 1
        if len(self.report.bad_examples) < MAX_EXAMPLES:
            self.report.bad_examples.append(text)

    def add(self, row: dict[str, Any]) -> bool:
        """Queue one prepared row; False when it duplicates an earlier row (not written)."""
        if self._seen is not None:
            key = digest(row["instruction"], row["input"], row["output"])
            if key in self._seen:
                self.report.count("duplicates")
                return False
            self._seen.add(key)
        self._buffer.append(row)
        if len(self._buffer) >= FLUSH_ROWS:
            self._flush()
        return True

    def _flush(self) -> None:
        rows, self._buffer = self._buffer, []
        verdicts = self._guard(rows) if self._guard else [None] * len(rows)
        chunks = []
        for row, over in zip(rows, verdicts, strict=True):
            if over is not None:
                self.report.dropped_overlong += 1
                if len(self.report.overlong_examples) < MAX_EXAMPLES:
                    self.report.overlong_examples.append(over.describe())
                continue
            chunks.append(json.dumps(row, ensure_ascii=False) + "\n")
            self.report.rows += 1
        if chunks:
            text = "".join(chunks)
            self._hash.update(text.encode("utf-8"))
            self._handle.write(text)

    def close(self) -> None:
        """Flush and close the temporary file; over-long rows with --on-overlong fail raise here."""
        self._flush()
        self._handle.close()
        self.closed = True
        self.report.sha256 = self._hash.hexdigest()
        if self.report.dropped_overlong and self._on_overlong == "fail":
            raise DataError(
                f"{self.report.file}: {self.report.dropped_overlong} rows longer than cutoff_len "
                f"(LLaMA-Factory would cut off the assistant header), e.g. {self.report.overlong_examples[0]}; "
                f"shorten them, raise cutoff_len, or use --on-overlong drop"
            )
        if self.report.rows == 0:
            raise DataError(
                f"{self.report.file}: no usable rows in {self.report.source or 'the source'} "
                f"(LLaMA-Factory cannot load an empty dataset)"
            )

    def abort(self) -> None:
        if not self.closed:
            self._handle.close()
            self.closed = True
        self.tmp.unlink(missing_ok=True)

    def commit(self) -> None:
        publish(self.tmp, self.target)


def read_manifest(path: Path) -> dict[str, Any]:
    """The existing manifest's file entries ({} when absent); DataError when it cannot be merged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"{path}:{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(path)
        raise DataError(f"{where}: manifest is not valid JSON ({exc}); fix or delete it") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise DataError(f'{path}: manifest has no "files" mapping; fix or delete it')
    return dict(files)


def manifest_text(existing: dict[str, Any], reports: list[FileReport]) -> str:
    """Merged manifest: entries of other files kept, entries of the written files replaced."""
    files = dict(existing)
    for report in reports:
        files[report.file] = report.manifest_entry()
    body = {
        "_comment": "Written by `mprtune prepare-data`: every prepared file with its row count, split, "
        "source, sha256 and prompt prefix. Entries of files not prepared in a run are kept.",
        "files": {name: files[name] for name in sorted(files)},
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class BuildContext:
    """What a corpus builder gets: where to read, the two writers, the prompt prefix."""

    source_root: Path | None  # local source folder; None reads from the Hugging Face Hub
    train: DatasetWriter
    eval: DatasetWriter
    prompt: str
    display: Callable[[Path], str]  # path as shown in messages and the manifest

    def corpus_dir(self, name: str, marker: str) -> Path:
        """`<source>/<name>/` when it exists, else `<source>/` itself when it holds `marker`."""
        assert self.source_root is not None
        sub = self.source_root / name
        if sub.is_dir():
            return sub
        if (self.source_root / marker).exists():
            return self.source_root
        raise DataError(
            f"{self.display(sub)}: folder not found (expected {name}/{marker} under --source "
            f"{self.display(self.source_root)}; layout: `mprtune prepare-data --help`)"
        )

    def feed(
        self, records: Iterable[Record | RowErrorAt], writer: DatasetWriter, parse: Callable[[Record], Any]
    ) -> Iterator[tuple[Record, Any]]:
        """(record, parsed) for every good record; bad ones go to writer.bad (raise or count)."""
        for record in records:
            if isinstance(record, RowErrorAt):
                writer.bad(record.where, record.message)
                continue
            try:
                parsed = parse(record)
            except RowError as exc:
                writer.bad(record.where, str(exc))
                continue
            if parsed is not None:
                yield record, parsed
