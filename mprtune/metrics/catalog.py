"""The metrics of the custom task kind: their names, definitions, units and directions.

The names a matrix lists under `metrics:` (:data:`BUILTIN`) and what each reports. Some expand:
``label_f1`` into one ``f1_<label>`` per declared label, ``field_accuracy`` into itself plus one
``field_<key>`` per declared field; ``confusion`` is not a scalar: the confusion matrix goes into
``SystemScores.details["confusion"]``. :data:`ALWAYS` are reported for every custom task.

Conventions (the honesty rules): an empty output is counted by ``empty`` and is a miss for every
metric that matches references (exact_match, accuracy, macro/label F1, json_valid, json_match,
field accuracy, BLEU, chrF, ROUGE-L, regex_match); the form metrics (verbose, no_answer,
out_of_label, output_words, length_ratio) cover the non-empty outputs only. Everything is judged
on the answer the task's pipeline extracted (:mod:`.extract`), the same for base and tuned.
"""

from __future__ import annotations

from collections.abc import Sequence

from .registry import MetricSpec

LABEL_METRICS = ("accuracy", "macro_f1", "label_f1", "confusion", "out_of_label")
JSON_METRICS = ("json_valid", "json_match", "field_accuracy")
TEXT_METRICS = ("exact_match", "bleu", "chrf", "rouge_l", "regex_match")
ALWAYS = ("empty", "verbose", "no_answer", "output_words", "length_ratio")
BUILTIN = (*TEXT_METRICS, *LABEL_METRICS, *JSON_METRICS, *ALWAYS)
NORMALIZE = ("none", "whitespace", "lower", "squad")

_MISS = " An empty output, or one the pipeline extracts nothing from, is a miss."

SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "exact_match",
            "Fraction of rows whose extracted answer equals a reference after `normalize: {normalize}`." + _MISS,
            "rate",
            "fraction",
            "higher",
        ),
        MetricSpec(
            "accuracy",
            "Fraction of rows whose extracted answer names the row's gold label (labels compare casefolded, without "
            "surrounding punctuation). A label outside the label set is wrong." + _MISS,
            "rate",
            "fraction",
            "higher",
        ),
        MetricSpec(
            "macro_f1",
            "Mean over the declared labels of F1 = 2TP / (2TP + FP + FN) (labels neither gold nor predicted are "
            "left out of the mean); an answer outside the label set, an empty output or no answer is a false "
            "negative of the gold label. Recomputed on every bootstrap resample.",
            "corpus",
            "fraction",
            "higher",
        ),
        MetricSpec(
            "out_of_label",
            "Over non-empty outputs: fraction whose extracted answer names no declared label (including outputs the "
            "pipeline extracts nothing from).",
            "rate",
            "fraction",
            "lower",
        ),
        MetricSpec(
            "json_valid",
            "Fraction of rows whose extracted answer is strict JSON (a truncated or trailing-text answer is not) "
            "{schema}." + _MISS,
            "rate",
            "fraction",
            "higher",
        ),
        MetricSpec(
            "json_match",
            "Fraction of rows whose extracted answer, parsed as JSON, equals a reference parsed as JSON (key order and "
            "layout do not matter, true is not 1). Invalid or truncated JSON never matches." + _MISS,
            "rate",
            "fraction",
            "higher",
        ),
        MetricSpec(
            "field_accuracy",
            "Over rows whose reference is a JSON object: fields of the answer equal to the reference's, divided by "
            "the reference's fields {fields} (ratio of sums). Invalid JSON matches no field.",
            "corpus",
            "fraction",
            "higher",
        ),
        MetricSpec(
            "bleu",
            "Corpus BLEU of the extracted answers against the references (sacrebleu defaults: 13a, exp smoothing), "
            "0-100 points; no answer counts as an empty hypothesis.",
            "corpus",
            "points",
            "higher",
        ),
        MetricSpec(
            "chrf",
            "Corpus chrF of the extracted answers against the references (sacrebleu defaults: character "
            "6-grams, beta 2), 0-100 points; no answer counts as an empty hypothesis.",
            "corpus",
            "points",
            "higher",
        ),
        MetricSpec(
            "rouge_l",
            "Mean ROUGE-L F1 of the extracted answers against the best reference (LCS on SQuAD-normalised tokens: "
            "lowercase, no punctuation or articles, as the knowledge kind), 0-1." + _MISS,
            "mean",
            "fraction",
            "higher",
        ),
        MetricSpec(
            "regex_match",
            "Fraction of rows whose extracted answer matches the task's `match` pattern in full ({match})." + _MISS,
            "rate",
            "fraction",
            "higher",
        ),
        MetricSpec("empty", "Fraction of outputs that are empty or whitespace only.", "rate", "fraction", "lower"),
        MetricSpec(
            "verbose",
            "Over non-empty outputs: fraction flagged by the verbosity detector (chat preamble, explanation, "
            "wrapping quotes, extra lines, more words than max(1.5x, 3 more than) the longest reference), judged "
            "with a parsed JSON answer written compactly: well-formed multi-line JSON is not verbose.",
            "rate",
            "fraction",
            "lower",
        ),
        MetricSpec(
            "no_answer",
            "Over non-empty outputs: fraction the answer pipeline extracts nothing from (no regex match, "
            "invalid JSON, nothing left).",
            "rate",
            "fraction",
            "lower",
        ),
        MetricSpec(
            "output_words",
            "Over non-empty outputs: mean words per output (JSON written compactly). Descriptive; judge length with "
            "length_ratio.",
            "mean",
            "words",
            "none",
        ),
        MetricSpec(
            "length_ratio",
            "Over non-empty outputs: total output words divided by the total of their rows' mean reference words "
            "(ratio of sums). 1.0 is ideal; closer to 1 is better.",
            "corpus",
            "ratio",
            "closer",
            1.0,
        ),
    )
}


def label_f1_name(label: str) -> str:
    return f"f1_{label}"


def field_name(key: str) -> str:
    return f"field_{key}"


def specs_for(
    names: Sequence[str],
    labels: Sequence[str] = (),
    fields: Sequence[str] = (),
    *,
    normalize: str = "whitespace",
    schema: bool = False,
    match: str | None = None,
) -> dict[str, MetricSpec]:
    """The scalar metrics of `names` (built-in names, ALWAYS appended), expanded, with the task's details."""
    out: dict[str, MetricSpec] = {}
    for name in dict.fromkeys([*names, *ALWAYS]):
        if name == "confusion":
            continue
        if name == "label_f1":
            for label in labels:
                out[label_f1_name(label)] = MetricSpec(
                    label_f1_name(label),
                    f"F1 of label {label!r}: 2TP / (2TP + FP + FN) over the rows (see macro_f1).",
                    "corpus",
                    "fraction",
                    "higher",
                )
            continue
        spec = SPECS[name]
        text = spec.description.format(
            normalize=normalize,
            schema="and satisfies the task's JSON Schema" if schema else "(no JSON Schema declared)",
            fields=f"({', '.join(fields)})" if fields else "(every key of the reference)",
            match=f"/{match}/" if match else "",
        )
        out[name] = MetricSpec(spec.name, text, spec.kind, spec.unit, spec.better, spec.target)
        if name == "field_accuracy":
            for key in fields:
                out[field_name(key)] = MetricSpec(
                    field_name(key),
                    f"Over rows whose reference object has {key!r}: fraction whose answer has it with an equal value.",
                    "rate",
                    "fraction",
                    "higher",
                )
    return out
