"""`mprtune score`: line-aligned text files in, the same metrics as `compare` out.

Files are read line by line (UTF-8; a final newline ends the last line, it does not start an
empty one). Every reference file gives each row one reference, a blank line included: the
official JFLEG scorer keeps blank reference lines, and GLEU/BLEU draw them like any other (the
row labels use a row's non-empty references, see :mod:`mprtune.metrics.scoring`).

Knowledge rows are either QA answers or descriptions, and the two are scored differently
(QA exact match and F1 vs ROUGE-L): the caller says which with ``row_kind``; nothing is
guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mprtune.errors import MprtuneError, show
from mprtune.tasks import KNOWLEDGE_ROW_KINDS, TASK_KINDS


def task_kind(task: str, matrix_path: Path | None) -> str:
    """A task kind, or a task name of the matrix at `matrix_path` (`paws_only` scores as paraphrase)."""
    if task in TASK_KINDS:
        return task
    from mprtune.config.matrix import load_matrix

    try:
        if matrix_path is None:
            raise KeyError(task)
        return load_matrix(matrix_path).tasks[task].kind
    except (MprtuneError, KeyError):
        raise MprtuneError(
            f"--task: unknown task {show(task)}; use one of {', '.join(TASK_KINDS)} or a task of mprtune.yaml"
        ) from None


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # an editor's BOM is not part of the first line
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MprtuneError(
            f"{path}:{line}: not UTF-8 text ({exc.reason} at byte offset {exc.start}); save the file as UTF-8"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    return [line.rstrip("\r") for line in lines]


def score_files(
    task: str,
    predictions: Path,
    source: Path,
    references: list[Path],
    with_ci: bool = True,
    row_kind: str | None = None,
    matrix_path: Path | None = None,
) -> dict[str, Any]:
    """Metrics of ``predictions`` (one output per line) against ``source`` and the reference
    files, as :func:`mprtune.metrics.score_rows` computes them. ``row_kind`` ("qa" or
    "description") is required for a knowledge task and refused for the others."""
    from mprtune.metrics import score_rows

    kind = task_kind(task, matrix_path)
    if kind == "knowledge" and row_kind not in KNOWLEDGE_ROW_KINDS:
        given = "no row kind" if row_kind is None else f"row kind {row_kind!r}"
        raise MprtuneError(
            f"--row-kind: {given} for knowledge task {task!r}; say whether the rows are "
            f"{' or '.join(KNOWLEDGE_ROW_KINDS)} (QA answers get exact match and F1, descriptions ROUGE-L)"
        )
    if kind != "knowledge" and row_kind is not None:
        raise MprtuneError(f"--row-kind: a row kind only applies to knowledge tasks; {task!r} is {kind}")
    if not references:
        raise MprtuneError("--reference: give at least one reference file (one reference per line)")
    outputs, sources = read_lines(predictions), read_lines(source)
    refs = [read_lines(path) for path in references]
    for path, lines in [(predictions, outputs), *zip(references, refs, strict=False)]:
        if len(lines) != len(sources):
            raise MprtuneError(
                f"{path}: {len(lines)} lines but {source} has {len(sources)}; files must be aligned line by line"
            )
    if not sources:
        raise MprtuneError(f"{source}: no lines to score")
    per_row_refs = [[r[i] for r in refs] for i in range(len(sources))]
    kinds = [str(row_kind)] * len(sources) if kind == "knowledge" else None
    return score_rows(kind, outputs, sources, per_row_refs, kinds, with_ci=with_ci)
