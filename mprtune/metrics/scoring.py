"""Score a task's outputs: per-row tags, corpus metrics with bootstrap CIs, paired diffs.

Metric names and descriptions live in :mod:`.registry`. Which metrics a task gets:

- every task: exact_match, verbose, output_words, reference_words, length_ratio
- grammar: gleu, acceptable, over_corrects
- paraphrase: bleu, self_bleu, ibleu, copy_rate
- knowledge: qa_exact_match and qa_f1 over rows whose kind is "qa", rouge_l over rows whose
  kind is "description" (a metric with no rows is omitted)

``references[i]`` lists row i's references; "reference_words" and "length_ratio" use
the FIRST reference of each row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .bootstrap import (bootstrap_ci, bootstrap_corpus_ci, paired_bootstrap_corpus_diff,
                        paired_bootstrap_diff)
from .gleu import CorpusGleu
from .grammar import acceptable, changed_words, over_corrects
from .knowledge import qa_exact_match, rouge_l, token_f1
from .paraphrase import IBLEU_ALPHA, CorpusBleu, is_copy
from .text import exact_match, verbosity_reasons, word_count

TASK_KINDS = ("grammar", "paraphrase", "knowledge")
ROW_KINDS = ("qa", "description")
GLEU_BOOTSTRAP_ITERATIONS = 50  # reference draws per resample: 500 x 200 resamples is wasteful


def _check(task_kind: str, outputs: Sequence[str], sources: Sequence[str],
           references: Sequence[Sequence[str]], row_kinds: Sequence[str] | None) -> list[str]:
    """Validate inputs; return the row kinds (knowledge defaults to all "qa")."""
    if task_kind not in TASK_KINDS:
        raise ValueError(f"task_kind must be one of {TASK_KINDS}, got {task_kind!r}")
    n = len(outputs)
    if n == 0:
        raise ValueError("no rows to score")
    if len(sources) != n or len(references) != n:
        raise ValueError("outputs, sources and references must have the same length")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every row needs at least one reference")
    kinds = list(row_kinds) if row_kinds is not None else ["qa"] * n
    if len(kinds) != n:
        raise ValueError("row_kinds must have one entry per row")
    if task_kind == "knowledge" and any(k not in ROW_KINDS for k in kinds):
        raise ValueError(f"knowledge row_kinds must be in {ROW_KINDS}")
    return kinds


def per_row(task_kind: str, outputs: Sequence[str], sources: Sequence[str],
            references: Sequence[Sequence[str]],
            row_kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One tag dict per row, for the report's sample table and as the basis of
    :func:`score_rows`. Keys: ``exact``, ``verbose``, ``verbose_reasons``,
    ``length_words``, ``reference_words``; grammar adds ``changed_words`` (source ->
    output), ``over_corrects``, ``acceptable``; paraphrase adds ``copy``; knowledge adds
    ``row_kind`` and either ``qa_exact_match`` + ``qa_f1`` (qa rows) or ``rouge_l``
    (description rows)."""
    kinds = _check(task_kind, outputs, sources, references, row_kinds)
    rows: list[dict[str, Any]] = []
    for out, src, refs, kind in zip(outputs, sources, references, kinds):
        reasons = verbosity_reasons(out, src, refs)
        row: dict[str, Any] = {
            "exact": exact_match(out, refs),
            "verbose": bool(reasons),
            "verbose_reasons": reasons,
            "length_words": word_count(out),
            "reference_words": word_count(refs[0]),
        }
        if task_kind == "grammar":
            row["changed_words"] = changed_words(src, out)
            row["over_corrects"] = over_corrects(out, src, refs)
            row["acceptable"] = acceptable(out, src, refs)
        elif task_kind == "paraphrase":
            row["copy"] = is_copy(out, src)
        else:
            row["row_kind"] = kind
            if kind == "qa":
                row["qa_exact_match"] = qa_exact_match(out, refs)
                row["qa_f1"] = token_f1(out, refs)
            else:
                row["rouge_l"] = rouge_l(out, refs)
        rows.append(row)
    return rows


@dataclass
class _RowMetric:
    """A rate/mean: per-row values over the rows in ``index`` (into the full row list)."""
    values: np.ndarray
    index: np.ndarray


@dataclass
class _CorpusMetric:
    """A corpus metric: its official value and a row-indices -> value statistic."""
    value: float
    statistic: Callable[[np.ndarray], float]


_Metric = _RowMetric | _CorpusMetric

# per-row metric name -> per_row() key it averages
_ROW_KEYS: dict[str, dict[str, str]] = {
    "grammar": {"acceptable": "acceptable", "over_corrects": "over_corrects"},
    "paraphrase": {"copy_rate": "copy"},
    "knowledge": {"qa_exact_match": "qa_exact_match", "qa_f1": "qa_f1", "rouge_l": "rouge_l"},
}


def _metrics(task_kind: str, outputs: Sequence[str], sources: Sequence[str],
             references: Sequence[Sequence[str]], row_kinds: Sequence[str] | None,
             gleu_bootstrap_iterations: int) -> dict[str, _Metric]:
    rows = per_row(task_kind, outputs, sources, references, row_kinds)

    def row_metric(key: str) -> _RowMetric | None:
        index = np.array([i for i, r in enumerate(rows) if key in r], dtype=np.intp)
        if index.size == 0:
            return None
        return _RowMetric(np.array([float(rows[i][key]) for i in index]), index)

    out_words = np.array([r["length_words"] for r in rows], dtype=np.float64)
    ref_words = np.array([r["reference_words"] for r in rows], dtype=np.float64)

    def ratio(ix: np.ndarray) -> float:
        den = ref_words[ix].sum()
        return float(out_words[ix].sum() / den) if den else float("nan")

    metrics: dict[str, _Metric | None] = {
        "exact_match": row_metric("exact"),
        "verbose": row_metric("verbose"),
        "output_words": row_metric("length_words"),
        "reference_words": row_metric("reference_words"),
        "length_ratio": (_CorpusMetric(ratio(np.arange(len(rows))), ratio)
                         if ref_words.sum() else None),
    }
    if task_kind == "grammar":
        cg = CorpusGleu(outputs, sources, references)
        metrics["gleu"] = _CorpusMetric(
            cg.score().score, lambda ix: cg.score(ix, gleu_bootstrap_iterations).score)
    elif task_kind == "paraphrase":
        cb = CorpusBleu(outputs, references)
        cs = CorpusBleu(outputs, [[s] for s in sources])
        b, s = cb.score(), cs.score()
        metrics["bleu"] = _CorpusMetric(b, cb.score)
        metrics["self_bleu"] = _CorpusMetric(s, cs.score)
        metrics["ibleu"] = _CorpusMetric(
            IBLEU_ALPHA * b - (1 - IBLEU_ALPHA) * s,
            lambda ix: IBLEU_ALPHA * cb.score(ix) - (1 - IBLEU_ALPHA) * cs.score(ix))
    for name, key in _ROW_KEYS[task_kind].items():
        metrics[name] = row_metric(key)
    return {k: v for k, v in metrics.items() if v is not None}


def score_rows(task_kind: str, outputs: list[str], sources: list[str],
               references: list[list[str]], row_kinds: list[str] | None = None,
               with_ci: bool = True, seed: int = 0, *, n_resamples: int = 1000,
               corpus_resamples: int = 200, confidence: float = 0.95,
               gleu_bootstrap_iterations: int = GLEU_BOOTSTRAP_ITERATIONS) -> dict[str, dict]:
    """``{metric: {"value", "ci_low", "ci_high", "n"}}`` for ``task_kind``.

    ``value`` is the metric on all its rows (GLEU with the official 500 draws); ``n`` the
    number of rows it covers. With ``with_ci`` the CI is a percentile bootstrap: rates and
    means resample their per-row values (``n_resamples``); corpus metrics resample rows and
    recompute (``corpus_resamples``; GLEU with ``gleu_bootstrap_iterations`` draws each).
    Without it, ``ci_low``/``ci_high`` are None. Deterministic for a given ``seed``.
    """
    result: dict[str, dict] = {}
    for name, m in _metrics(task_kind, outputs, sources, references, row_kinds,
                            gleu_bootstrap_iterations).items():
        low = high = None
        if isinstance(m, _RowMetric):
            value, n = float(m.values.mean()), int(m.values.size)
            if with_ci:
                _, low, high = bootstrap_ci(m.values, n_resamples, confidence, seed)
        else:
            value, n = m.value, len(outputs)
            if with_ci:
                _, low, high = bootstrap_corpus_ci(n, m.statistic, corpus_resamples,
                                                   confidence, seed)
        result[name] = {"value": value, "ci_low": low, "ci_high": high, "n": n}
    return result


def paired_diffs(task_kind: str, tuned_outputs: list[str], baseline_outputs: list[str],
                 sources: list[str], references: list[list[str]],
                 row_kinds: list[str] | None = None, seed: int = 0, *,
                 n_resamples: int = 1000, corpus_resamples: int = 200,
                 confidence: float = 0.95,
                 gleu_bootstrap_iterations: int = GLEU_BOOTSTRAP_ITERATIONS
                 ) -> dict[str, dict[str, float]]:
    """``{metric: {"value", "ci_low", "ci_high"}}`` of tuned - baseline on the same rows.

    ``value`` is the difference of the two full-data values; the CI is a paired bootstrap
    (the same resampled rows for both systems): per-row values for rates/means, recomputed
    corpus statistics for corpus metrics. Positive means tuned is higher (check
    ``METRICS[name].higher_is_better`` to read it as better or worse).
    """
    if len(tuned_outputs) != len(baseline_outputs):
        raise ValueError("tuned and baseline outputs must have the same length")
    tuned = _metrics(task_kind, tuned_outputs, sources, references, row_kinds,
                     gleu_bootstrap_iterations)
    base = _metrics(task_kind, baseline_outputs, sources, references, row_kinds,
                    gleu_bootstrap_iterations)
    result: dict[str, dict[str, float]] = {}
    for name, t in tuned.items():
        b = base.get(name)
        if b is None:
            continue
        if isinstance(t, _RowMetric) and isinstance(b, _RowMetric):
            value, low, high = paired_bootstrap_diff(t.values, b.values, n_resamples,
                                                     confidence, seed)
        elif isinstance(t, _CorpusMetric) and isinstance(b, _CorpusMetric):
            _, low, high = paired_bootstrap_corpus_diff(len(tuned_outputs), t.statistic,
                                                        b.statistic, corpus_resamples,
                                                        confidence, seed)
            value = t.value - b.value
        else:  # pragma: no cover - the two systems share row kinds, so shapes agree
            continue
        result[name] = {"value": float(value), "ci_low": low, "ci_high": high}
    return result
