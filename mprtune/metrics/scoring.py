"""Score a task's outputs: per-row tags, corpus metrics with bootstrap CIs, paired diffs.

Metric names, units, directions and descriptions live in :mod:`.registry`. Which metrics a
task gets:

- every task: exact_match, empty, verbose, output_words, reference_words, length_gap,
  length_ratio
- grammar: gleu, acceptable, over_corrects
- paraphrase: bleu, self_bleu, ibleu, copy_rate
- knowledge: qa_exact_match and qa_f1 over rows whose kind is "qa", rouge_l over rows whose
  kind is "description"

A metric with no rows to cover (e.g. verbose when every output is empty, rouge_l without
description rows) is omitted.

Conventions (documented per metric in the registry):

- Tokens: a grammar or paraphrase output is first written the way its row's source and
  references are tokenized (:func:`.tokens.as_references`); GLEU, BLEU, self-BLEU and every
  grammar/paraphrase label compare that form. Sources and references are used as given, so
  the official JFLEG figures are unchanged. Knowledge compares SQuAD-normalised answers.
- References: ``references[i]`` lists row i's references. GLEU and BLEU use all of them, an
  empty string included (the official scorer keeps blank reference lines); row labels (exact,
  acceptable, over-correction, lengths, verbosity) use the row's non-empty references (all of
  them when every one is empty).
- Empty outputs: counted by ``empty``; a miss for exact/acceptable/GLEU/BLEU/F1/ROUGE-L; left
  out of the form metrics (verbose, lengths, copy, self-BLEU, over-correction), whose ``n``
  says how many rows they cover.
- Chat wrappers: over-correction is judged on the answer :func:`.text.extract_answer` finds
  inside the output; rows without a single clean answer are left out of it.

Intervals: a percentile bootstrap over rows with ``n_resamples`` (default 10,000) resamples.
Every metric of a call, and both systems of a paired comparison, are evaluated on the SAME
resamples (:func:`.bootstrap.resample_counts`), and corpus metrics are recomputed exactly as
their point value (GLEU with all 500 official reference draws). 10,000 resamples keep the GLEU
bounds of JFLEG test stable to 0.1 points (0.001 on the 0-1 scale) across seeds: measured
spread over 10 seeds 0.09 points at 10,000 vs 0.19 at 2,000 (bench/metrics_speed.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mprtune.rows import EvalRow, ScoredRow

from .api import CONFIDENCE, N_RESAMPLES, Computed, SystemScores, diffs_of, mean_of, ratio_of_sums, scores_of
from .bootstrap import resample_counts
from .gleu import CorpusGleu
from .grammar import OVER_CORRECT_MARGIN, acceptable, changed_words, unjustified_edits
from .knowledge import qa_exact_match, rouge_l, token_f1
from .paraphrase import IBLEU_ALPHA, CorpusBleu
from .registry import KNOWLEDGE_ROW_KINDS, TASK_KINDS  # any other kind is an error here, never a fallback
from .text import extract_answer, normalize_ws, verbosity_reasons, word_count
from .tokens import as_references


def _check(
    task_kind: str,
    outputs: Sequence[str],
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    row_kinds: Sequence[str] | None,
) -> list[str]:
    """Validate inputs; return the row kinds (the task kind for grammar and paraphrase)."""
    if task_kind not in TASK_KINDS:
        raise ValueError(f"task_kind must be one of {TASK_KINDS}, got {task_kind!r}")
    n = len(outputs)
    if n == 0:
        raise ValueError("no rows to score")
    if len(sources) != n or len(references) != n:
        raise ValueError("outputs, sources and references must have the same length")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every row needs at least one reference")
    if task_kind != "knowledge":
        return [task_kind] * n
    if row_kinds is None:
        raise ValueError(f"knowledge rows need row_kinds (one of {KNOWLEDGE_ROW_KINDS} per row)")
    kinds = list(row_kinds)
    if len(kinds) != n:
        raise ValueError("row_kinds must have one entry per row")
    if any(k not in KNOWLEDGE_ROW_KINDS for k in kinds):
        raise ValueError(f"knowledge row_kinds must be in {KNOWLEDGE_ROW_KINDS}")
    return kinds


def _label_references(references: Sequence[str]) -> list[str]:
    return [r for r in references if r.strip()] or list(references)


def _row(task_kind: str, kind: str, out: str, src: str, refs: Sequence[str]) -> tuple[dict[str, Any], str]:
    """(per-row tags, the output as compared: tokenized like the references for grammar and
    paraphrase, as is for knowledge)."""
    labels = _label_references(refs)
    empty = not out.strip()
    if task_kind == "knowledge":
        compared = out
        words, ref_words = word_count(out), [word_count(r) for r in labels]
        exact = not empty and qa_exact_match(out, labels)
    else:
        compared = as_references(out, src, refs)
        words, ref_words = len(compared.split()), [len(r.split()) for r in labels]
        exact = not empty and any(compared == normalize_ws(r) for r in labels)
    reasons = [] if empty else verbosity_reasons(out, src, labels, output_words=words, reference_words=ref_words)
    answer = None if empty else extract_answer(out, src, labels)
    row: dict[str, Any] = {
        "exact": exact,
        "empty": empty,
        "verbose": None if empty else bool(reasons),
        "verbose_reasons": reasons,
        "answer": answer,
        "length_words": words,
        "reference_words": float(np.mean(ref_words)),
        "length_gap": None if empty else min(abs(words - r) for r in ref_words),
    }
    if task_kind == "grammar":
        row["changed_words"] = changed_words(src, compared)
        answer_compared = (
            compared if answer == out.strip() else (None if answer is None else as_references(answer, src, refs))
        )
        edits = None if answer_compared is None else unjustified_edits(answer_compared, src, labels)
        row["unjustified_edits"] = edits
        row["over_corrects"] = None if edits is None else edits > OVER_CORRECT_MARGIN
        row["acceptable"] = acceptable(compared, src, labels, verbose=bool(reasons))
    elif task_kind == "paraphrase":
        row["copy"] = None if empty else compared == normalize_ws(src)
    elif task_kind == "knowledge":
        row["row_kind"] = kind
        if kind == "qa":
            row["qa_exact_match"] = qa_exact_match(out, labels)
            row["qa_f1"] = token_f1(out, labels)
        else:
            row["rouge_l"] = rouge_l(out, labels)
    return row, compared


def per_row(
    task_kind: str,
    outputs: Sequence[str],
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    row_kinds: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One tag dict per row, for the report's sample table and as the basis of
    :func:`score_rows`. Keys:

    - every task: ``exact``, ``empty``, ``verbose`` (None when empty), ``verbose_reasons``,
      ``answer`` (the output without its chat wrapper; None when empty or when no single
      answer can be extracted), ``length_words``, ``reference_words`` (mean over the row's
      references), ``length_gap`` (None when empty);
    - grammar: ``changed_words`` (source -> output), ``unjustified_edits`` and
      ``over_corrects`` (of the answer; None without one), ``acceptable``;
    - paraphrase: ``copy`` (None when empty);
    - knowledge: ``row_kind`` and either ``qa_exact_match`` + ``qa_f1`` (qa rows) or
      ``rouge_l`` (description rows).
    """
    kinds = _check(task_kind, outputs, sources, references, row_kinds)
    return [
        _row(task_kind, kind, out, src, refs)[0]
        for out, src, refs, kind in zip(outputs, sources, references, kinds, strict=False)
    ]


# --- metrics of one system ---------------------------------------------------------------------


class _System:
    """Every metric of one system's outputs on a task's rows (per-row tags computed once)."""

    def __init__(
        self,
        task_kind: str,
        outputs: Sequence[str],
        sources: Sequence[str],
        references: Sequence[Sequence[str]],
        row_kinds: Sequence[str] | None,
    ) -> None:
        kinds = _check(task_kind, outputs, sources, references, row_kinds)
        tagged = [
            _row(task_kind, kind, out, src, refs)
            for out, src, refs, kind in zip(outputs, sources, references, kinds, strict=False)
        ]
        self.rows = rows = [row for row, _ in tagged]
        compared = [text for _, text in tagged]
        self.n_rows = len(outputs)
        non_empty = np.array([i for i, r in enumerate(rows) if not r["empty"]], dtype=np.intp)
        words = np.array([r["length_words"] for r in rows], dtype=np.float64)
        ref_words = np.array([r["reference_words"] for r in rows], dtype=np.float64)
        metrics: dict[str, Computed | None] = {
            "exact_match": mean_of([r["exact"] for r in rows]),
            "empty": mean_of([r["empty"] for r in rows]),
            "verbose": mean_of([r["verbose"] for r in rows]),
            "output_words": mean_of([None if r["empty"] else r["length_words"] for r in rows]),
            "reference_words": mean_of([r["reference_words"] for r in rows]),
            "length_gap": mean_of([r["length_gap"] for r in rows]),
            "length_ratio": ratio_of_sums(words, ref_words, non_empty),
        }
        if task_kind == "grammar":
            gleu = CorpusGleu(compared, sources, references)
            metrics["gleu"] = Computed(gleu.score().score, self.n_rows, gleu.resampled)
            metrics["acceptable"] = mean_of([r["acceptable"] for r in rows])
            metrics["over_corrects"] = mean_of([r["over_corrects"] for r in rows])
        elif task_kind == "paraphrase":
            bleu = CorpusBleu(compared, references)
            metrics["bleu"] = Computed(bleu.score(), self.n_rows, bleu.resampled)
            if non_empty.size:
                own = CorpusBleu([compared[i] for i in non_empty], [[sources[i]] for i in non_empty])
                self_stat = lambda counts: own.resampled(counts[:, non_empty])  # noqa: E731
                metrics["self_bleu"] = Computed(own.score(), int(non_empty.size), self_stat)
                metrics["ibleu"] = Computed(
                    IBLEU_ALPHA * bleu.score() - (1 - IBLEU_ALPHA) * own.score(),
                    self.n_rows,
                    lambda counts: IBLEU_ALPHA * bleu.resampled(counts) - (1 - IBLEU_ALPHA) * self_stat(counts),
                )
            metrics["copy_rate"] = mean_of([r["copy"] for r in rows])
        elif task_kind == "knowledge":
            metrics["qa_exact_match"] = mean_of([r.get("qa_exact_match") for r in rows])
            metrics["qa_f1"] = mean_of([r.get("qa_f1") for r in rows])
            metrics["rouge_l"] = mean_of([r.get("rouge_l") for r in rows])
        self.metrics = {k: v for k, v in metrics.items() if v is not None}


def _scores(system: _System, counts: np.ndarray | None, confidence: float) -> dict[str, dict]:
    return scores_of(system.metrics, counts, confidence)


def _diffs(tuned: _System, baseline: _System, counts: np.ndarray, confidence: float) -> dict[str, dict]:
    return diffs_of(tuned.metrics, baseline.metrics, counts, confidence)


def builtin_scores(task_kind: str, rows: Sequence[EvalRow], outputs: Sequence[str]) -> SystemScores:
    """One system's scores on a built-in kind's eval rows, as the kinds of mprtune.tasks report them."""
    kinds = [r.row_type for r in rows] if task_kind == "knowledge" else None
    system = _System(task_kind, outputs, [r.source for r in rows], [list(r.references) for r in rows], kinds)
    scored = [
        ScoredRow(row, out, tags.get("answer"), tags) for row, out, tags in zip(rows, outputs, system.rows, strict=True)
    ]
    return SystemScores(scored, system.metrics)


def score_rows(
    task_kind: str,
    outputs: Sequence[str],
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    row_kinds: Sequence[str] | None = None,
    with_ci: bool = True,
    seed: int = 0,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, dict]:
    """``{metric: {"value", "ci_low", "ci_high", "n"}}`` for ``task_kind``.

    ``value`` is the metric on all the rows it covers (GLEU with the official 500 draws);
    ``n`` the number of rows it covers. With ``with_ci`` the CI is a percentile bootstrap over
    rows (see the module docstring), else ``ci_low``/``ci_high`` are None. Deterministic for a
    given ``seed``. ``row_kinds`` is required for knowledge ("qa" | "description" per row).
    """
    system = _System(task_kind, outputs, sources, references, row_kinds)
    counts = resample_counts(system.n_rows, n_resamples, seed) if with_ci else None
    return _scores(system, counts, confidence)


def paired_diffs(
    task_kind: str,
    tuned_outputs: Sequence[str],
    baseline_outputs: Sequence[str],
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    row_kinds: Sequence[str] | None = None,
    seed: int = 0,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, dict[str, float]]:
    """``{metric: {"value", "ci_low", "ci_high"}}`` of tuned - baseline on the same rows.

    ``value`` is the difference of the two values; the CI is a paired bootstrap: both systems'
    metrics recomputed on the same resampled rows. Positive means tuned is higher: ask
    :func:`.registry.improvement` whether that is better. A metric one system lacks (no rows
    to cover) has no diff.
    """
    return compare_rows(
        task_kind,
        tuned_outputs,
        baseline_outputs,
        sources,
        references,
        row_kinds,
        seed,
        n_resamples=n_resamples,
        confidence=confidence,
    )["diff"]


def compare_rows(
    task_kind: str,
    tuned_outputs: Sequence[str],
    baseline_outputs: Sequence[str],
    sources: Sequence[str],
    references: Sequence[Sequence[str]],
    row_kinds: Sequence[str] | None = None,
    seed: int = 0,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Everything a comparison needs, each statistic computed once on one set of resamples:
    ``{"baseline": score_rows(...), "tuned": score_rows(...), "diff": paired_diffs(...),
    "baseline_rows": per_row(...), "tuned_rows": per_row(...)}`` (same values as the separate
    calls with the same seed)."""
    if len(tuned_outputs) != len(baseline_outputs):
        raise ValueError("tuned and baseline outputs must have the same length")
    tuned = _System(task_kind, tuned_outputs, sources, references, row_kinds)
    baseline = _System(task_kind, baseline_outputs, sources, references, row_kinds)
    counts = resample_counts(tuned.n_rows, n_resamples, seed)
    return {
        "baseline": _scores(baseline, counts, confidence),
        "tuned": _scores(tuned, counts, confidence),
        "diff": _diffs(tuned, baseline, counts, confidence),
        "baseline_rows": baseline.rows,
        "tuned_rows": tuned.rows,
    }
