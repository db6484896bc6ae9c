"""LLaMA-Factory's trainer_log.jsonl (one JSON object per logging step), read defensively.

The file is appended while training runs and may end mid-line, hold bytes that are not UTF-8
after a crash, or lines that are JSON but not objects: such lines are skipped (and reported once
through `warn`), never fatal for `status` or `collect`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.io import Warn, quiet


@dataclass(frozen=True)
class Progress:
    step: int | None
    total_steps: int | None
    loss: float | None
    remaining: str | None
    elapsed: str | None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def read_rows(trainer_log: Path, warn: Warn = quiet) -> Iterator[dict[str, Any]]:
    """Every well-formed row; damaged lines are counted and reported once, with the first line number."""
    try:
        handle = trainer_log.open("rb")
    except OSError:
        return
    damaged: list[int] = []
    with handle:
        lines = handle.read().split(b"\n")
    last = len(lines)
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            if number != last:  # the last line may be being written right now
                damaged.append(number)
            continue
        if isinstance(row, dict):
            yield row
        else:
            damaged.append(number)
    if damaged:
        warn(f"{trainer_log}:{damaged[0]}: skipped {len(damaged)} damaged line(s) (not a JSON object)")


def read_progress(trainer_log: Path, warn: Warn = quiet) -> Progress:
    """The last logged step of a run, with the last logged loss."""
    last_loss = None
    last: dict[str, Any] = {}
    for row in read_rows(trainer_log, warn):
        last = row
        loss = _number(row.get("loss"))
        if loss is not None:
            last_loss = loss
    step, total = _number(last.get("current_steps")), _number(last.get("total_steps"))
    remaining, elapsed = last.get("remaining_time"), last.get("elapsed_time")
    return Progress(
        int(step) if step is not None else None,
        int(total) if total is not None else None,
        last_loss,
        remaining if isinstance(remaining, str) else None,
        elapsed if isinstance(elapsed, str) else None,
    )


def loss_curve(trainer_log: Path, warn: Warn = quiet) -> list[tuple[int, float]]:
    points = []
    for row in read_rows(trainer_log, warn):
        step, loss = _number(row.get("current_steps")), _number(row.get("loss"))
        if step is not None and loss is not None:
            points.append((int(step), loss))
    return points
