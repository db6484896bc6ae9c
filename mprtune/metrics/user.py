"""User metrics named by dotted path: their signature check and how they run inside the bootstrap.

- per row: ``function(answer, references[, row]) -> float | bool | None``; ``answer`` is the
  extracted answer (canonical JSON after a ``json`` step; ``""`` when nothing was extracted or
  the output is empty), ``references`` the row's references, ``row`` the
  :class:`mprtune.rows.ScoredRow` (raw output, the eval row with its raw ``fields``). The metric
  is the mean over the rows where it is not None, resampled like every mean.
- corpus: ``function(answers, references[, rows]) -> float`` on lists; it is called once on all
  rows and once per bootstrap resample (10,000 calls by default: keep it fast; even a trivial
  function costs ~4 ms a call on 10,000 rows here, ~40 s per system for a 10,000 x 10,000
  comparison, where a per-row metric costs what a built-in mean does).

A function that raises, or returns something that is not a number, stops scoring with an
:class:`mprtune.errors.MprtuneError` that names the metric and the row (the finished predictions
stay on disk: fix the function and rerun the comparison).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

from mprtune.errors import MprtuneError, show
from mprtune.rows import ScoredRow

from .registry import MetricSpec

if TYPE_CHECKING:  # numpy and the metric machinery load when scoring, not when the matrix is checked
    import numpy as np

    from .api import Computed

PER = ("row", "corpus")


@dataclass(frozen=True)
class UserMetric:
    spec: MetricSpec
    path: str  # module:function
    per: str  # row | corpus
    function: Callable[..., Any]


def arity(function: Any) -> int | None:
    """How many positional arguments to pass (3 or 2), None when neither fits the signature."""
    if not callable(function):
        return None
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return 3  # a builtin without introspection: trust it
    for n in (3, 2):
        try:
            signature.bind(*range(n))
        except TypeError:
            continue
        return n
    return None


def signature_problem(function: Any, per: str) -> str | None:
    if not callable(function):
        return f"is not callable (a {type(function).__name__})"
    if arity(function) is None:
        names = "answer, references[, row]" if per == "row" else "answers, references[, rows]"
        return f"must accept ({names}); its signature is {inspect.signature(function)}"
    return None


def _number(value: Any, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, Real)):  # numpy numbers are Real too
        number = float(value)
        return None if math.isnan(number) and allow_none else number
    raise TypeError(f"returned {show(value)}, not a number")


def _answer(row: ScoredRow) -> str:
    return row.answer if row.answer is not None else ""


def compute(metric: UserMetric, rows: Sequence[ScoredRow]) -> tuple[Computed | None, list[float | None] | None]:
    """The metric, and its per-row values (None for a corpus metric)."""
    import numpy as np

    from .api import by_recomputing, mean_of

    n = arity(metric.function) or 3
    name = metric.spec.name
    if metric.per == "row":
        values: list[float | None] = []
        for row in rows:
            args: tuple[Any, ...] = (_answer(row), list(row.row.references), row)[:n]
            try:
                values.append(_number(metric.function(*args), allow_none=True))
            except Exception as exc:
                raise MprtuneError(
                    f"user metric {name!r} ({metric.path}) failed on row {row.row.id!r}: {type(exc).__name__}: {exc}"
                ) from exc
        return mean_of(values), values
    answers = [_answer(row) for row in rows]
    references = [list(row.row.references) for row in rows]
    rows = list(rows)

    columns = (answers, references, rows)[:n]  # only what the function takes: called once per resample

    def on(index: np.ndarray) -> float:
        picked = index.tolist()
        args = [[column[i] for i in picked] for column in columns]
        try:
            value = _number(metric.function(*args), allow_none=False)
        except Exception as exc:
            what = "all rows" if len(picked) == len(rows) else "a bootstrap resample"
            first = rows[picked[0]].row.id if picked else "-"
            raise MprtuneError(
                f"user metric {name!r} ({metric.path}) failed on {what} ({len(picked)} rows from row {first!r}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        assert value is not None
        return value

    return by_recomputing(on, np.arange(len(rows), dtype=np.intp)), None
