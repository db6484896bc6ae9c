"""`mprtune score`: any system's outputs in, the same metrics as `compare` out.

Predictions are either a text file (one output per line) or LLaMA-Factory's own
`generated_predictions.jsonl` (`predict`, `label`). Rows come from the task's eval file (`--eval`, or
the task's eval datasets of the matrix for a prediction file of LLaMA-Factory's), and then every
prediction is checked against its row through the label LLaMA-Factory echoes; or from line-aligned
text files (`--source`, `--references`). Only what the task's metrics need is asked for: a custom
task scores a `generated_predictions.jsonl` against its own labels with nothing else.

Text files are read line by line (UTF-8; a final newline ends the last line, it does not start an
empty one). Every reference file gives each row one reference, a blank line included: the official
JFLEG scorer keeps blank reference lines, and GLEU/BLEU draw them like any other (the row labels use
a row's non-empty references, see :mod:`mprtune.metrics.scoring`). Knowledge rows given as text are
either QA answers or descriptions, scored differently: the caller says which with ``row_kind``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mprtune.errors import MprtuneError, show
from mprtune.rows import EvalRow
from mprtune.tasks import BUILTIN_KINDS, KNOWLEDGE_ROW_KINDS, KindError, TaskKind, resolve_kind

if TYPE_CHECKING:
    from mprtune.config.entities import Task
    from mprtune.workspace import Workspace


@dataclass(frozen=True)
class Prediction:
    output: str
    label: str | None  # what LLaMA-Factory echoed (None for a plain text file)


def task_plugin(task: str, matrix_path: Path | None) -> tuple[TaskKind, Task | None, Workspace | None]:
    """(the kind, the matrix task, the workspace): a task name of the matrix, else a kind name (no task)."""
    if matrix_path is not None:
        from mprtune.workspace import Workspace

        try:
            ws = Workspace.open(matrix_path)
        except MprtuneError:
            ws = None
        if ws is not None and task in ws.matrix.tasks:
            return ws.matrix.tasks[task].plugin, ws.matrix.tasks[task], ws
    if task in BUILTIN_KINDS:
        return resolve_kind(task)(task=task), None, None
    known = ", ".join(BUILTIN_KINDS)
    raise MprtuneError(f"--task: unknown task {show(task)}; use one of {known} or a task of mprtune.yaml")


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


def _is_llamafactory(lines: list[str]) -> bool:
    first = next((line for line in lines if line.strip()), "")
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "predict" in record


def read_prediction_file(path: Path) -> list[Prediction]:
    """Outputs of a text file, or of LLaMA-Factory's generated_predictions.jsonl (with its echoed labels)."""
    lines = read_lines(path)
    if not _is_llamafactory(lines):
        return [Prediction(line, None) for line in lines]
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("predict"), str):
            raise MprtuneError(f"{path}:{number}: not a prediction line of LLaMA-Factory (`predict` missing)")
        label = record.get("label")
        found.append(Prediction(record["predict"].strip(), label if isinstance(label, str) else None))
    return found


def _eval_rows(
    kind: TaskKind, ws: Workspace | None, task: Task | None, eval_files: list[Path], limit: int | None
) -> list[EvalRow] | None:
    """The rows the predictions were made on: `eval_files`, else the matrix task's eval datasets (None: neither).

    Built-in kinds read the JSON lines `prepare-data` wrote; a task of the user's own data reads them
    as LLaMA-Factory does, `eval_files` in the format of its first eval dataset.
    """
    from mprtune.evaluate.predictions import prepared_rows, task_eval_rows

    if kind.preparers:
        named = [(path.stem, path) for path in eval_files]
        if not named and task is not None and ws is not None:
            named = [(n, ws.data_dir / ws.matrix.datasets[n].file) for n in task.eval]
            named = [(n, path) for n, path in named if path.is_file()]
        return [row for n, path in named for row in prepared_rows(path, n, kind, limit)[0]] or None
    if task is None or ws is None:
        return None
    if eval_files:
        template = ws.matrix.datasets[task.eval[0]]
        given = {
            f"eval{i}": dataclasses.replace(template, name=f"eval{i}", file=str(path.resolve()))
            for i, path in enumerate(eval_files)
        }
        ws = dataclasses.replace(ws, matrix=dataclasses.replace(ws.matrix, datasets={**ws.matrix.datasets, **given}))
        task = dataclasses.replace(task, eval=tuple(given))
    return task_eval_rows(ws, task, limit).rows


def _aligned(predictions: list[Prediction], rows: list[EvalRow], where: Path) -> None:
    from mprtune.evaluate.predictions import same_label

    if len(predictions) != len(rows):
        raise MprtuneError(f"{where}: {len(predictions)} predictions for {len(rows)} eval rows; they must be aligned")
    for number, (prediction, row) in enumerate(zip(predictions, rows, strict=True), 1):
        if prediction.label is not None and not same_label(prediction.label, row.output):
            raise MprtuneError(
                f"{where}:{number}: prediction belongs to another row (its label is not the output of eval row "
                f"{row.id}); score it against the eval file it was predicted on"
            )


def _text_rows(
    kind: TaskKind, source: Path | None, references: list[Path], row_kind: str | None, n: int
) -> list[EvalRow]:
    if kind.name == "knowledge" and row_kind not in KNOWLEDGE_ROW_KINDS:
        given = "no row kind" if row_kind is None else f"row kind {row_kind!r}"
        raise MprtuneError(
            f"--row-kind: {given} for knowledge task {kind.task!r}; say whether the rows are "
            f"{' or '.join(KNOWLEDGE_ROW_KINDS)} (QA answers get exact match and F1, descriptions ROUGE-L)"
        )
    if kind.name != "knowledge" and row_kind is not None:
        raise MprtuneError(f"--row-kind: a row kind only applies to knowledge tasks; {kind.task!r} is {kind.name}")
    if not references:
        raise MprtuneError("--references: give at least one reference file (one reference per line), or --eval")
    if source is None and kind.needs_source:
        raise MprtuneError(f"--source: {kind.name} metrics compare against the input; give --source or --eval")
    sources = read_lines(source) if source is not None else [""] * n
    refs = [read_lines(path) for path in references]
    for path, lines in zip(references, refs, strict=True):
        if len(lines) != len(sources):
            raise MprtuneError(
                f"{path}: {len(lines)} lines but {source} has {len(sources)}; files must be aligned line by line"
            )
    row_type = str(row_kind) if kind.name == "knowledge" else kind.name
    return [
        EvalRow(f"line-{i + 1}", src, tuple(r[i] for r in refs), row_type, src, refs[0][i])
        for i, src in enumerate(sources)
    ]


def score_files(
    task: str,
    predictions: Path,
    source: Path | None = None,
    references: list[Path] | None = None,
    with_ci: bool = True,
    row_kind: str | None = None,
    matrix_path: Path | None = None,
    eval_files: list[Path] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """``{metric: {value, ci_low, ci_high, n}}`` of ``predictions`` on the task's rows, as compare scores them."""
    from mprtune.metrics.api import N_RESAMPLES, scores_of
    from mprtune.metrics.bootstrap import resample_counts

    try:
        kind, matrix_task, ws = task_plugin(task, matrix_path)
    except KindError as exc:
        raise MprtuneError(f"--task: {exc}") from None
    found = read_prediction_file(predictions)
    echoed = bool(found) and all(p.label is not None for p in found)
    given_text = source is not None or bool(references)
    rows = _eval_rows(kind, ws, matrix_task, list(eval_files or []), limit) if eval_files or not given_text else None
    if rows is not None:
        _aligned(found, rows, predictions)
    elif given_text:
        rows = _text_rows(kind, source, list(references or []), row_kind, len(found))
        if len(found) != len(rows):
            raise MprtuneError(
                f"{predictions}: {len(found)} lines but {source} has {len(rows)}; files must be aligned line by line"
            )
    elif echoed and not kind.needs_source:
        rows = [
            EvalRow(f"line-{i + 1}", "", (p.label or "",), kind.name, "", p.label or "") for i, p in enumerate(found)
        ]
    else:
        needs = "--eval (the eval file the predictions were made on)"
        if not echoed:
            needs += " or --source/--references"
        raise MprtuneError(f"{kind.name} metrics need the eval rows: give {needs}")
    if not rows:
        raise MprtuneError(f"{predictions}: no lines to score")
    system = kind.score(rows, [p.output for p in found])
    counts = resample_counts(len(rows), N_RESAMPLES, 0) if with_ci else None
    return scores_of(system.metrics, counts, 0.95)
