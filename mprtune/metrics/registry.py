"""Metric registry: the single source of truth for metric names, definitions, units and the
direction in which a metric gets better.

Every key of ``METRICS`` is a JSON key users see in results files; the report and the results
schema read ``description`` / ``kind`` / ``unit`` / ``better`` from here, and ask
:func:`improvement` for a verdict instead of comparing numbers themselves.

Scales (one per unit): corpus scores (GLEU, BLEU, self-BLEU, iBLEU) are ``points`` on 0-100
(JFLEG publishes GLEU 40.54, sacrebleu prints BLEU 0-100); rates and per-row scores in [0, 1]
(exact match, verbose, empty, copy, QA F1, ROUGE-L) are ``fraction`` (a report shows rates as
percentages); lengths are ``words`` (tokens of the comparison convention, see :mod:`.tokens`);
``length_ratio`` is a ``ratio`` (1.0 = as long as the references).

Which rows a metric covers (its ``n``): "form" metrics that describe an output (verbose,
lengths, copy, over-correction) are over NON-EMPTY outputs; an empty output is counted by
``empty`` and is a miss for every metric that matches references (exact, acceptable, GLEU,
BLEU, F1, ROUGE-L). So a system that outputs nothing scores 0 where copying the input scores
something, and has no value (not a good one) for the form metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BETTER = ("higher", "lower", "closer", "none")
# The built-in task kinds scored by mprtune.metrics.scoring (mprtune.tasks reads them from here), and
# knowledge's two row types (short-answer questions, entity descriptions), scored differently.
TASK_KINDS = ("grammar", "paraphrase", "knowledge")
KNOWLEDGE_ROW_KINDS = ("qa", "description")
UNITS = ("points", "fraction", "words", "ratio")


@dataclass(frozen=True)
class MetricSpec:
    """Static description of one metric.

    ``kind`` is ``"rate"`` (mean of per-row 0/1 values), ``"mean"`` (mean of a per-row
    number) or ``"corpus"`` (computed on the whole corpus, not a mean of per-row values; its
    CI comes from a row-resampling bootstrap). ``unit`` is one of ``UNITS`` (see the module
    docstring). ``better`` says which way is better: ``"higher"``, ``"lower"``, ``"closer"``
    (closer to ``target``) or ``"none"`` (descriptive: no verdict).
    """

    name: str
    description: str
    kind: str
    unit: str
    better: str
    target: float | None = None

    @property
    def higher_is_better(self) -> bool:
        """True only when a larger value is better (False for lower, closer and descriptive
        metrics: use :func:`improvement` for a verdict)."""
        return self.better == "higher"


def _spec(
    name: str, description: str, kind: str, unit: str, better: str, target: float | None = None
) -> tuple[str, MetricSpec]:
    assert better in BETTER and unit in UNITS and (target is not None) == (better == "closer")
    return name, MetricSpec(name, description, kind, unit, better, target)


_TOKENS = (
    "Grammar and paraphrase outputs are first written the way the row's references are "
    "tokenized (nltk Penn Treebank tokens; tokens the row's own text has are kept)."
)

METRICS: dict[str, MetricSpec] = dict(
    [
        # --- all tasks -------------------------------------------------------------
        _spec(
            "exact_match",
            "Fraction of outputs equal to at least one non-empty reference. Grammar and "
            "paraphrase: after tokenizing the output like the references and collapsing "
            "whitespace, case-sensitive. Knowledge: after SQuAD normalisation (lowercase, no "
            "punctuation, no articles). An empty output never matches.",
            "rate",
            "fraction",
            "higher",
        ),
        _spec("empty", "Fraction of outputs that are empty or whitespace only.", "rate", "fraction", "lower"),
        _spec(
            "verbose",
            "Over non-empty outputs: fraction flagged by the verbosity detector (a chat "
            "preamble, an explanation, wrapping quotes, extra lines, or more words than "
            "max(1.5x, 3 more than) the longest reference).",
            "rate",
            "fraction",
            "lower",
        ),
        _spec(
            "output_words",
            "Over non-empty outputs: mean words per output (grammar/paraphrase: tokens as the "
            "references are tokenized). Descriptive; judge length with length_gap.",
            "mean",
            "words",
            "none",
        ),
        _spec(
            "reference_words",
            "Mean words of a row's references (mean over its non-empty references), over all "
            "rows: a property of the eval data.",
            "mean",
            "words",
            "none",
        ),
        _spec(
            "length_gap",
            "Over non-empty outputs: mean absolute difference in words between the output and "
            "the reference closest in length. 0 = every output as long as some reference.",
            "mean",
            "words",
            "lower",
        ),
        _spec(
            "length_ratio",
            "Over non-empty outputs: total output words divided by the total of their rows' "
            "reference_words (ratio of sums). 1.0 is ideal; closer to 1 is better, shorter is "
            "not better.",
            "corpus",
            "ratio",
            "closer",
            1.0,
        ),
        # --- grammar ---------------------------------------------------------------
        _spec(
            "gleu",
            "Corpus GLEU (Napoles et al. 2015, revised 2016) exactly as the official JFLEG "
            "scorer (mean over its 500 seeded reference draws), 0-100 points (JFLEG test source: "
            "40.54). " + _TOKENS,
            "corpus",
            "points",
            "higher",
        ),
        _spec(
            "acceptable",
            "Fraction of outputs that match a reference exactly, or are within one word edit "
            "(Levenshtein on tokens) of a reference and not verbose. " + _TOKENS,
            "rate",
            "fraction",
            "higher",
        ),
        _spec(
            "over_corrects",
            "Over outputs with an answer (non-empty, and a single answer left once a chat "
            "wrapper is removed): fraction whose answer makes more than 1 token edit to the "
            "source at places where no reference edits. " + _TOKENS,
            "rate",
            "fraction",
            "lower",
        ),
        # --- paraphrase ------------------------------------------------------------
        _spec(
            "bleu",
            "Corpus BLEU of outputs against the references (sacrebleu defaults: 13a, exp "
            "smoothing), 0-100 points. " + _TOKENS,
            "corpus",
            "points",
            "higher",
        ),
        _spec(
            "self_bleu",
            "Over non-empty outputs: corpus BLEU against their inputs as the only reference "
            "(sacrebleu defaults), 0-100 points; high means the output copies the input. " + _TOKENS,
            "corpus",
            "points",
            "lower",
        ),
        _spec(
            "ibleu",
            "iBLEU = 0.8 * bleu - 0.2 * self_bleu (Sun & Zhou 2012), 0-100 points; bleu over all "
            "rows, self_bleu over non-empty outputs.",
            "corpus",
            "points",
            "higher",
        ),
        _spec(
            "copy_rate",
            "Over non-empty outputs: fraction identical to their input once tokenized like it "
            "(a copy written with normal punctuation is a copy).",
            "rate",
            "fraction",
            "lower",
        ),
        # --- knowledge -------------------------------------------------------------
        _spec(
            "qa_exact_match",
            "Over QA rows: fraction whose SQuAD-normalised answer (lowercase, no punctuation, "
            "no articles, collapsed whitespace) equals a normalised gold answer.",
            "rate",
            "fraction",
            "higher",
        ),
        _spec(
            "qa_f1",
            "Over QA rows: mean SQuAD token F1 between the normalised answer and the best gold answer, 0-1.",
            "mean",
            "fraction",
            "higher",
        ),
        _spec(
            "rouge_l",
            "Over description rows: mean ROUGE-L F1 (LCS on SQuAD-normalised tokens, beta=1, best reference), 0-1.",
            "mean",
            "fraction",
            "higher",
        ),
    ]
)


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def direction(name: str, spec: MetricSpec | Mapping[str, Any] | None = None) -> tuple[str, float | None]:
    """(better, target) of a metric: from its definition when given (a user metric, results.json), else the registry."""
    if spec is None:
        spec = METRICS[name]
    if isinstance(spec, MetricSpec):
        return spec.better, spec.target
    return str(spec["better"]), spec.get("target")


def improvement(
    name: str,
    baseline: float | None,
    tuned: float | None,
    *,
    ci_low: float | None = None,
    ci_high: float | None = None,
    spec: MetricSpec | Mapping[str, Any] | None = None,
) -> bool | None:
    """Is ``tuned`` better than ``baseline`` on metric ``name``? True (better), False (worse),
    None (no verdict: a descriptive metric, a missing value, equal values, or, when the paired
    interval of tuned - baseline is given, an interval that contains 0).

    "closer" metrics are judged by the distance to their target (``length_ratio`` 1.44 -> 0.29
    is worse, 0.89 -> 1.00 better); the interval only decides whether the change is real.
    Unknown names raise KeyError unless their definition is given as ``spec``.
    """
    better, target = direction(name, spec)
    base, new = _number(baseline), _number(tuned)
    if better == "none" or base is None or new is None:
        return None
    low, high = _number(ci_low), _number(ci_high)
    if low is not None and high is not None and low <= 0.0 <= high:
        return None
    if better == "closer":
        assert target is not None
        base, new = -abs(base - target), -abs(new - target)  # closer = higher
    elif better == "lower":
        base, new = -base, -new
    if math.isclose(new, base, rel_tol=1e-9, abs_tol=1e-12):  # 0.9 and 1.1 are as far from 1
        return None
    return new > base


def improvement_of(
    spec: MetricSpec,
    baseline: float | None,
    tuned: float | None,
    *,
    ci_low: float | None = None,
    ci_high: float | None = None,
) -> bool | None:
    """:func:`improvement` for a metric defined by its spec (a task kind's `metric_specs()`, user metrics)."""
    return improvement(spec.name, baseline, tuned, ci_low=ci_low, ci_high=ci_high, spec=spec)
