"""Score one system on a custom task: per-row tags, and every metric from ONE matrix of per-row statistics.

Every built-in custom metric is a function of summed per-row statistics: a rate or a mean over
covered rows is ``sum(value * covered) / sum(covered)``, macro-F1 sums label one-hots, BLEU and chrF
sum sacrebleu's segment statistics. All of them sit side by side in one (rows, k) matrix, so a
batch of bootstrap resample counts costs ONE matrix product per system (:class:`SharedSums`), then
each metric reads its own columns: exactly :func:`.api.from_statistics`, shared. User metrics run
through :mod:`.user`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from mprtune.errors import DataError, show
from mprtune.rows import EvalRow, ScoredRow

from . import labels as lab
from .api import Computed, SystemScores
from .catalog import field_name, label_f1_name
from .extract import Extracted, Pipeline, canonical_json, normalize_label, parse_json
from .knowledge import normalize_answer, rouge_l
from .sacre import bleu_from_stats, bleu_statistics, chrf_from_stats, chrf_statistics
from .structured import field_matches, json_equal, schema_error
from .text import normalize_ws, verbosity_reasons, word_count
from .user import UserMetric, compute

_BLOCK = 500  # resamples per matrix product block: (500 x rows) float64 at a time


@dataclass(frozen=True)
class CustomScoring:
    """What a custom task scores: built-in metric names (as listed, unexpanded), their settings, user metrics."""

    pipeline: Pipeline
    metrics: tuple[str, ...]
    labels: tuple[str, ...] = ()
    normalize: str = "whitespace"
    fields: tuple[str, ...] = ()
    schema: dict[str, Any] | None = None
    match: re.Pattern[str] | None = None
    user: tuple[UserMetric, ...] = field(default=())


class SharedSums:
    """`counts @ stats` for a batch of resample counts, computed once per counts (blockwise).

    Identical columns are multiplied once. Integer columns whose sums cannot pass 2**24 (every
    partial sum of a resample is at most rows x max |stat|) are multiplied in float32, which is
    then exact; the rest in float64. The result equals `counts @ stats` in float64.
    """

    def __init__(self, stats: np.ndarray) -> None:
        self.stats = np.ascontiguousarray(stats, dtype=np.float64)
        unique, self._inverse = np.unique(self.stats, axis=1, return_inverse=True)
        self._inverse = np.asarray(self._inverse).reshape(-1)
        limit = float(2**24) / max(1, self.stats.shape[0])
        exact = np.all(unique == np.round(unique), axis=0) & (np.abs(unique).max(axis=0, initial=0.0) < limit)
        self._small = np.ascontiguousarray(unique[:, exact], dtype=np.float32)
        self._wide = np.ascontiguousarray(unique[:, ~exact])
        self._order = np.concatenate([np.flatnonzero(exact), np.flatnonzero(~exact)])
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def of(self, counts: np.ndarray) -> np.ndarray:
        if self._last is None or self._last[0] is not counts:
            unique = np.empty((counts.shape[0], self._order.size))
            small, wide = self._small.shape[1], self._wide.shape[1]
            for a in range(0, counts.shape[0], _BLOCK):
                block = counts[a : a + _BLOCK]
                if small:
                    unique[a : a + _BLOCK, :small] = block.astype(np.float32) @ self._small
                if wide:
                    unique[a : a + _BLOCK, small:] = block.astype(np.float64) @ self._wide
            placed = np.empty_like(unique)
            placed[:, self._order] = unique
            self._last = (counts, placed[:, self._inverse])
        return self._last[1]


def normalizer(how: str) -> Callable[[str], str]:
    if how == "none":
        return lambda text: text
    if how == "lower":
        return lambda text: normalize_ws(text).lower()
    if how == "squad":
        return normalize_answer
    return normalize_ws


@dataclass
class _Row:
    """One row's references as the metrics compare them."""

    texts: list[str]  # canonical JSON for JSON tasks
    values: list[Any]  # parsed JSON references (JSON tasks)
    gold: int  # label index (label tasks), else -1


def references_of(row: EvalRow, scoring: CustomScoring) -> _Row:
    """The row's references as compared; DataError naming the row when one cannot be (eval_row checks first)."""
    texts = [r.strip() for r in row.references]
    if not texts:
        raise DataError(f"row {row.id!r}: no reference")
    values: list[Any] = []
    if scoring.pipeline.parses_json:
        for text in texts:
            value, error = parse_json(text)
            if error is not None:
                raise DataError(f"row {row.id!r}: the reference is not JSON ({error}): {show(text)}")
            values.append(value)
        texts = [canonical_json(v) for v in values]
    gold = -1
    if scoring.labels:
        index = {normalize_label(label): i for i, label in enumerate(scoring.labels)}
        gold = index.get(normalize_label(texts[0]), -1)
        if gold < 0:
            raise DataError(
                f"row {row.id!r}: the reference {show(texts[0])} is not one of the labels {list(scoring.labels)}"
            )
    return _Row(texts, values, gold)


def _judged(output: str, extracted: Extracted) -> str:
    """The output as verbosity and length judge it: a parsed JSON answer written compactly."""
    text = output.strip()
    if extracted.parsed and extracted.json_text is not None and extracted.text is not None:
        return text.replace(extracted.json_text.strip(), extracted.text, 1)
    return text


class _Columns:
    def __init__(self, n: int) -> None:
        self.n, self.width = n, 0
        self.blocks: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> slice:
        block = np.asarray(block, dtype=np.float64).reshape(self.n, -1)
        self.blocks.append(block)
        start, self.width = self.width, self.width + block.shape[1]
        return slice(start, self.width)

    def mean(self, values: Sequence[float | bool | None]) -> slice:
        """Columns [value * covered, covered] of a mean over the rows where the value is not None."""
        covered = np.array([v is not None for v in values], dtype=np.float64)
        v = np.array([0.0 if x is None else float(x) for x in values])
        return self.add(np.stack([v * covered, covered], axis=1))


def _ratio(summed: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return summed[..., 0] / summed[..., 1]


def score_custom(scoring: CustomScoring, rows: Sequence[EvalRow], outputs: Sequence[str]) -> SystemScores:
    """One system's ScoredRows (with tags), metrics (each with its statistic) and details (confusion)."""
    if len(rows) != len(outputs):
        raise ValueError("rows and outputs must have the same length")
    if not rows:
        raise ValueError("no rows to score")
    names = set(scoring.metrics)
    same = normalizer(scoring.normalize)
    scored: list[ScoredRow] = []
    refs: list[_Row] = []
    for row, raw in zip(rows, outputs, strict=True):
        extracted = scoring.pipeline.run(raw)
        ref = references_of(row, scoring)
        scored.append(
            ScoredRow(row, raw.strip(), extracted.text, _tags(scoring, names, same, raw, extracted, row, ref))
        )
        refs.append(ref)
    columns = _Columns(len(rows))
    builders: dict[str, tuple[slice, Callable[[np.ndarray], np.ndarray], int]] = {}
    _row_metrics(names, scored, refs, columns, builders)
    details: dict[str, Any] = {}
    if scoring.labels and names & {"macro_f1", "label_f1", "confusion"}:
        _label_metrics(scoring, names, scored, refs, columns, builders, details)
    if "field_accuracy" in names:
        _field_metrics(scoring, scored, columns, builders)
    hypotheses = [r.answer or "" for r in scored]
    references = [ref.texts for ref in refs]
    if "bleu" in names:
        builders["bleu"] = (columns.add(bleu_statistics(hypotheses, references)), bleu_from_stats, len(rows))
    if "chrf" in names:
        builders["chrf"] = (columns.add(chrf_statistics(hypotheses, references)), chrf_from_stats, len(rows))
    metrics = _computed(columns, builders)
    for user in scoring.user:
        computed, values = compute(user, scored)
        if computed is not None:
            metrics[user.spec.name] = computed
        for one, value in zip(scored, values or (), strict=False):
            one.tags[user.spec.name] = value
    return SystemScores(scored, metrics, details)


_MEANS = (
    ("exact_match", "exact"),
    ("accuracy", "correct"),
    ("out_of_label", "out_of_label"),
    ("json_valid", "json_valid"),
    ("json_match", "json_match"),
    ("rouge_l", "rouge_l"),
    ("regex_match", "regex_match"),
    ("empty", "empty"),
    ("verbose", "verbose"),
    ("no_answer", "no_answer"),
    ("output_words", "output_words"),
)


def _row_metrics(
    names: set[str],
    scored: Sequence[ScoredRow],
    refs: Sequence[_Row],
    columns: _Columns,
    builders: dict[str, tuple[slice, Callable[[np.ndarray], np.ndarray], int]],
) -> None:
    """Rates and means over the rows whose tag is not None, and length_ratio."""
    for name, key in _MEANS:
        if name in names:
            values = [r.tags.get(key) for r in scored]
            builders[name] = (columns.mean(values), _ratio, sum(v is not None for v in values))
    if "length_ratio" in names:
        non_empty = np.array([not r.tags["empty"] for r in scored], dtype=np.float64)
        words = np.array([r.tags["output_words"] or 0 for r in scored], dtype=np.float64) * non_empty
        ref_words = np.array([np.mean([word_count(t) for t in ref.texts]) for ref in refs]) * non_empty
        builders["length_ratio"] = (columns.add(np.stack([words, ref_words], axis=1)), _ratio, int(non_empty.sum()))


def _statistic(
    sums: SharedSums, cols: slice, score: Callable[[np.ndarray], np.ndarray]
) -> Callable[[np.ndarray], np.ndarray]:
    return lambda counts: score(sums.of(counts)[:, cols])


def _computed(
    columns: _Columns, builders: dict[str, tuple[slice, Callable[[np.ndarray], np.ndarray], int]]
) -> dict[str, Computed]:
    """Every metric with rows to cover and a defined value; all resample through one SharedSums."""
    sums = SharedSums(np.concatenate(columns.blocks, axis=1) if columns.blocks else np.zeros((columns.n, 0)))
    metrics: dict[str, Computed] = {}
    for name, (cols, score, n) in builders.items():
        value = float(score(sums.stats[:, cols].sum(axis=0)))
        if n == 0 or not np.isfinite(value):
            continue
        metrics[name] = Computed(value, n, _statistic(sums, cols, score))
    return metrics


def _tags(
    scoring: CustomScoring,
    names: set[str],
    same: Callable[[str], str],
    raw: str,
    extracted: Extracted,
    row: EvalRow,
    ref: _Row,
) -> dict[str, Any]:
    empty = not raw.strip()
    answer = extracted.text
    judged = "" if empty else _judged(raw, extracted)
    reasons = [] if empty else verbosity_reasons(judged, row.source, ref.texts)
    tags: dict[str, Any] = {
        "empty": empty,
        "answer": answer,
        "answer_error": None if empty else extracted.error,
        "no_answer": None if empty else answer is None,
        "verbose": None if empty else bool(reasons),
        "verbose_reasons": reasons,
        "output_words": None if empty else word_count(judged),
        "exact": answer is not None and any(same(answer) == same(t) for t in ref.texts),
    }
    if scoring.labels:
        predicted = None if answer is None else scoring.pipeline.label_of(answer)
        tags["gold_label"] = scoring.labels[ref.gold] if ref.gold >= 0 else None
        tags["predicted_label"] = predicted
        tags["correct"] = predicted is not None and predicted == tags["gold_label"]
        tags["out_of_label"] = None if empty else predicted is None
    if scoring.pipeline.parses_json:
        problem = extracted.error if not extracted.parsed else None
        if extracted.parsed and scoring.schema is not None:
            problem = schema_error(extracted.value, scoring.schema)
        tags["json_valid"] = extracted.parsed and problem is None
        tags["invalid_json"] = None if empty else not tags["json_valid"]
        tags["json_error"] = None if empty else problem
        tags["json_match"] = extracted.parsed and any(json_equal(extracted.value, v) for v in ref.values)
        if "field_accuracy" in names:
            matches = [
                field_matches(extracted.value if extracted.parsed else None, v, scoring.fields or None)
                for v in ref.values
            ]
            tags["fields"] = max(matches, key=lambda m: sum(m.values()), default={})
    if "rouge_l" in names:
        tags["rouge_l"] = 0.0 if answer is None else rouge_l(answer, ref.texts)
    if scoring.match is not None:
        tags["regex_match"] = answer is not None and scoring.match.fullmatch(answer) is not None
    return tags


def _label_metrics(
    scoring: CustomScoring,
    names: set[str],
    scored: Sequence[ScoredRow],
    refs: Sequence[_Row],
    columns: _Columns,
    builders: dict[str, tuple[slice, Callable[[np.ndarray], np.ndarray], int]],
    details: dict[str, Any],
) -> None:
    k = len(scoring.labels)
    index = {label: i for i, label in enumerate(scoring.labels)}
    gold = [ref.gold for ref in refs]
    predicted = [index.get(r.tags.get("predicted_label") or "", lab.NO_LABEL) for r in scored]
    if "confusion" in names:
        details["confusion"] = lab.confusion(scoring.labels, gold, predicted, [r.answer is not None for r in scored])
    cols = columns.add(lab.label_statistics(gold, predicted, k))
    if "macro_f1" in names:
        builders["macro_f1"] = (cols, partial(lab.macro_f1, k=k), len(scored))
    if "label_f1" in names:
        for i, label in enumerate(scoring.labels):
            builders[label_f1_name(label)] = (cols, partial(_label_f1, k=k, i=i), len(scored))


def _label_f1(summed: np.ndarray, k: int, i: int) -> np.ndarray:
    return lab.per_label_f1(summed, k)[..., i]


def _field_metrics(
    scoring: CustomScoring,
    scored: Sequence[ScoredRow],
    columns: _Columns,
    builders: dict[str, tuple[slice, Callable[[np.ndarray], np.ndarray], int]],
) -> None:
    per_row = [r.tags.get("fields") or {} for r in scored]
    matched = np.array([sum(m.values()) for m in per_row], dtype=np.float64)
    total = np.array([len(m) for m in per_row], dtype=np.float64)
    builders["field_accuracy"] = (columns.add(np.stack([matched, total], axis=1)), _ratio, int((total > 0).sum()))
    for key in scoring.fields:
        values = [m.get(key) for m in per_row]
        builders[field_name(key)] = (columns.mean(values), _ratio, sum(v is not None for v in values))
