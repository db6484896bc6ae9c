"""`mprtune score`: line-aligned text files in, the same metrics as `compare` out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mprtune.errors import MprtuneError, show
from mprtune.tasks import TASK_KINDS


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
        raise MprtuneError(f"--task: unknown task {show(task)}; use one of {', '.join(TASK_KINDS)} "
                           f"or a task of mprtune.yaml") from None


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # an editor's BOM is not part of the first line
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MprtuneError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte offset {exc.start}); "
                           f"save the file as UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    return [line.rstrip("\r") for line in lines]


def score_files(task: str, predictions: Path, source: Path, references: list[Path],
                with_ci: bool = True, matrix_path: Path | None = None) -> dict[str, Any]:
    from mprtune.metrics import score_rows

    kind = task_kind(task, matrix_path)
    outputs, sources = read_lines(predictions), read_lines(source)
    refs = [read_lines(path) for path in references]
    for path, lines in [(predictions, outputs), *zip(references, refs)]:
        if len(lines) != len(sources):
            raise MprtuneError(f"{path}: {len(lines)} lines but {source} has {len(sources)}; "
                               f"files must be aligned line by line")
    if not sources:
        raise MprtuneError(f"{source}: no lines to score")
    per_row_refs = [[r[i] for r in refs if r[i].strip()] or [refs[0][i]] for i in range(len(sources))]
    return score_rows(kind, outputs, sources, per_row_refs, None, with_ci=with_ci)
