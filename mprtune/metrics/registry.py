"""Metric registry: the single source of truth for metric names and descriptions.

Every key of ``METRICS`` is a JSON key users see in results files; the report and the
results schema read ``description`` / ``higher_is_better`` / ``kind`` from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """Static description of one metric.

    ``kind`` is ``"rate"`` (mean of per-row 0/1 values, a fraction in [0, 1]),
    ``"mean"`` (mean of a per-row number) or ``"corpus"`` (computed on the whole corpus,
    not a mean of per-row values; its CI comes from a row-resampling bootstrap).
    """

    name: str
    description: str
    higher_is_better: bool
    kind: str


def _spec(name: str, description: str, higher_is_better: bool, kind: str) -> tuple[str, MetricSpec]:
    return name, MetricSpec(name, description, higher_is_better, kind)


METRICS: dict[str, MetricSpec] = dict(
    [
        # --- all tasks -------------------------------------------------------------
        _spec("exact_match",
              "Fraction of outputs equal to at least one reference after whitespace "
              "normalisation (strip, collapse whitespace runs); case-sensitive.",
              True, "rate"),
        _spec("verbose",
              "Fraction of outputs flagged by the verbosity detector (preamble, explanation, "
              "wrapping quotes, extra lines, or more than 1.5x the longest reference's words).",
              False, "rate"),
        _spec("output_words",
              "Mean number of whitespace-separated words per output.",
              False, "mean"),
        _spec("reference_words",
              "Mean number of whitespace-separated words of each row's first reference.",
              False, "mean"),
        _spec("length_ratio",
              "Total output words divided by total first-reference words (ratio of sums); "
              "1.0 is ideal, above 1 means longer than the references.",
              False, "corpus"),
        # --- grammar ---------------------------------------------------------------
        _spec("gleu",
              "Corpus GLEU (Napoles et al. 2015, revised 2016) exactly as the official JFLEG "
              "scorer: mean over 500 seeded random reference draws, 0-1 scale.",
              True, "corpus"),
        _spec("acceptable",
              "Fraction of outputs that match a reference exactly, or are within one word "
              "edit (Levenshtein on tokens) of a reference and not verbose.",
              True, "rate"),
        _spec("over_corrects",
              "Fraction of outputs that change more source words than the most-edited "
              "reference does, plus a margin of 2 words.",
              False, "rate"),
        # --- paraphrase ------------------------------------------------------------
        _spec("bleu",
              "Corpus BLEU of outputs against the references (sacrebleu defaults, 0-100).",
              True, "corpus"),
        _spec("self_bleu",
              "Corpus BLEU of outputs against their inputs as the only reference (sacrebleu "
              "defaults, 0-100); high means the output copies the input.",
              False, "corpus"),
        _spec("ibleu",
              "iBLEU = 0.8 * bleu - 0.2 * self_bleu (Sun & Zhou 2012), 0-100 scale.",
              True, "corpus"),
        _spec("copy_rate",
              "Fraction of outputs identical to their input after whitespace normalisation.",
              False, "rate"),
        # --- knowledge -------------------------------------------------------------
        _spec("qa_exact_match",
              "Over QA rows: fraction whose SQuAD-normalised answer (lowercase, no punctuation, "
              "no articles, collapsed whitespace) equals a normalised gold answer.",
              True, "rate"),
        _spec("qa_f1",
              "Over QA rows: mean SQuAD token F1 between the normalised answer and the best "
              "gold answer.",
              True, "mean"),
        _spec("rouge_l",
              "Over description rows: mean ROUGE-L F1 (LCS on SQuAD-normalised tokens, beta=1, "
              "best reference).",
              True, "mean"),
    ]
)
