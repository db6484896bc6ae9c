"""The documented contract of `mprtune compare`'s results: a JSON Schema plus its validator.

`results.json` is what people diff, archive and load into notebooks, so every key carries a
description here (in the spirit of lm-evaluation-harness' documented results), and the report
writer refuses a dict that does not match: a typo in the compare step fails loudly with the key
path instead of silently rendering an empty column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mprtune.errors import MprtuneError
from mprtune.evaluate.schema_parts import (
    METRIC_NAMES,
    MODELS,
    NUM_OR_NULL,
    PRESENTATION,
    PROVENANCE,
    SWEEPS,
    SYSTEM,
    VARIANT_SWEEP,
    closed_object,
    prop,
    stat_schema,
)
from mprtune.metrics.registry import BETTER, UNITS, MetricSpec

SCHEMA_VERSION = 4
METRIC_KINDS = ("rate", "mean", "corpus")
TAG_PATTERN = r"^[A-Z][A-Z0-9_-]*$"

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mprtune compare results",
    **closed_object(
        "Base vs LoRA-tuned comparison of every selected variant, written by `mprtune compare` "
        "as results.json and rendered into report.md.",
        {
            "schema_version": prop(
                "integer", "Version of this schema; bumped on incompatible changes.", const=SCHEMA_VERSION
            ),
            "created_at": prop(
                "string",
                "When the comparison ran, ISO 8601 (e.g. 2025-01-31T12:00:00Z); "
                "the only time-dependent value in the report.",
                format="date-time",
            ),
            "profile": prop("string", "Matrix profile the variants come from (e.g. 'reference', 'demo')."),
            "matrix": prop("string", "File name of the experiment matrix (e.g. 'mprtune.yaml')."),
            "confidence": prop(
                "number",
                "Confidence level of every interval in this file (e.g. 0.95).",
                exclusiveMinimum=0,
                exclusiveMaximum=1,
            ),
            "models": MODELS,
            "provenance": PROVENANCE,
            "recipe": {
                "type": "object",
                "description": "Shared training recipe: LLaMA-Factory argument -> value (extra_args "
                "nested as an object).",
                "additionalProperties": {
                    "type": ["string", "number", "boolean", "null", "array", "object"],
                    "description": "A LLaMA-Factory argument value as written in the matrix.",
                },
            },
            "metrics": {
                "type": "object",
                "description": "Definition of every metric used in this file (a copy of the registry "
                "entries, so results.json is self-describing).",
                "propertyNames": METRIC_NAMES,
                "additionalProperties": closed_object(
                    "One metric's definition.",
                    {
                        "description": prop("string", "What the metric measures and how."),
                        "higher_is_better": prop(
                            "boolean",
                            "True only when a larger value is better (false for "
                            "lower-is-better, closer-to-target and descriptive "
                            "metrics: read `better`).",
                        ),
                        "better": prop(
                            "string",
                            "Which way is better: 'higher', 'lower', 'closer' (to `target`) "
                            "or 'none' (descriptive, no verdict).",
                            enum=list(BETTER),
                        ),
                        "target": prop(
                            NUM_OR_NULL, "The value a 'closer' metric aims at (1.0 for length_ratio); null otherwise."
                        ),
                        "unit": prop(
                            "string",
                            "'points' (0-100 corpus scores: GLEU, BLEU, iBLEU), 'fraction' "
                            "(0-1; rates, QA F1, ROUGE-L), 'words' or 'ratio'.",
                            enum=list(UNITS),
                        ),
                        "kind": prop(
                            "string",
                            "'rate' (fraction of rows), 'mean' (mean of a per-row "
                            "number) or 'corpus' (computed on the whole corpus).",
                            enum=list(METRIC_KINDS),
                        ),
                    },
                ),
            },
            "variants": {
                "type": "array",
                "description": "One entry per compared variant, in matrix order.",
                "items": closed_object(
                    "A LoRA variant compared against its base model on the task's eval sets.",
                    {
                        "variant": prop("string", "Variant name from the matrix (e.g. 'llama32_3b_grammar_lora')."),
                        "model": prop("string", "Base model name from the matrix (e.g. 'llama32_3b')."),
                        "model_path": prop("string", "Hub id or local path of the base model."),
                        "task": prop("string", "Task name from the matrix (e.g. 'grammar', 'paws_only')."),
                        "task_kind": prop(
                            "string",
                            "Task kind as the matrix names it (grammar, paraphrase, knowledge, custom, a "
                            "plugin's name or a dotted path); decides which metrics exist.",
                        ),
                        "eval_datasets": prop(
                            "array",
                            "Held-out datasets the rows come from.",
                            items={"type": "string", "description": "A dataset name."},
                            minItems=1,
                        ),
                        "n_rows": prop("integer", "Number of eval rows both systems answered.", minimum=1),
                        "baseline_key": prop(
                            "string", "Prediction key of the shared baseline run (base__<model>__<eval sets>)."
                        ),
                        "presentation": PRESENTATION,
                        "sweep": VARIANT_SWEEP,
                        "baseline": SYSTEM,
                        "tuned": SYSTEM,
                        "diff": {
                            "type": "object",
                            "description": "Metric name -> tuned minus baseline on the same rows, with a "
                            "paired-bootstrap interval (mprtune.metrics.paired_diffs).",
                            "propertyNames": METRIC_NAMES,
                            "additionalProperties": stat_schema("One metric's paired difference.", with_n=False),
                        },
                    },
                    optional=("presentation",),  # results written before schema 4: the kind supplies it
                ),
            },
            "sweeps": SWEEPS,
            "training": {
                "type": "array",
                "description": "One entry per variant's training run (also failed or missing ones).",
                "items": closed_object(
                    "Outcome of one training run.",
                    {
                        "variant": prop("string", "Variant name."),
                        "state": prop(
                            "string",
                            "Run state as recorded by `mprtune train` (e.g. 'completed', 'failed', 'missing').",
                        ),
                        "train_seconds": prop(NUM_OR_NULL, "Training wall-clock seconds; null if unknown.", minimum=0),
                        "final_loss": prop(NUM_OR_NULL, "Last logged training loss; null if none was logged."),
                        "best_loss": prop(NUM_OR_NULL, "Lowest logged training loss; null if none was logged."),
                        "steps": prop(["integer", "null"], "Optimizer steps completed; null if unknown.", minimum=0),
                        "samples_per_second": prop(
                            NUM_OR_NULL, "Training throughput reported by the trainer.", minimum=0
                        ),
                        "adapter_path": prop(["string", "null"], "Where the LoRA adapter was saved; null if none."),
                        "adapter_bytes": prop(["integer", "null"], "Size of the adapter weights on disk.", minimum=0),
                    },
                ),
            },
            "samples": {
                "type": "array",
                "description": "Selected eval rows shown side by side (mprtune.report.select_samples).",
                "items": closed_object(
                    "One eval row with both systems' outputs.",
                    {
                        "variant": prop("string", "Variant the row belongs to (one of variants[].variant)."),
                        "row": prop("integer", "0-based position of the row in the eval set.", minimum=0),
                        "id": prop("string", "Stable row id from the prepared data."),
                        "source": prop("string", "Model input without the task prompt."),
                        "reference": prop("string", "First reference output (shown in report.md)."),
                        "references": prop(
                            "array",
                            "Every reference of the row, in reference order (samples.csv lists them all).",
                            items={"type": "string", "description": "One reference output."},
                        ),
                        "baseline_output": prop("string", "Base model output."),
                        "tuned_output": prop("string", "Base model + adapter output."),
                        "baseline_tags": prop(
                            "array",
                            "Per-row tags of the baseline output (mprtune.report.tags_for).",
                            items={
                                "type": "string",
                                "pattern": TAG_PATTERN,
                                "description": "An upper-case tag such as EXACT or VERBOSE.",
                            },
                        ),
                        "tuned_tags": prop(
                            "array",
                            "Per-row tags of the tuned output (mprtune.report.tags_for).",
                            items={
                                "type": "string",
                                "pattern": TAG_PATTERN,
                                "description": "An upper-case tag such as EXACT or VERBOSE.",
                            },
                        ),
                    },
                ),
            },
        },
    ),
}


def metric_directions() -> dict[str, bool]:
    """Metric name -> higher_is_better, straight from the registry."""
    from mprtune.metrics.registry import METRICS

    return {name: spec.higher_is_better for name, spec in METRICS.items()}


def metric_definitions(specs: Mapping[str, MetricSpec] | Iterable[str]) -> dict[str, dict[str, Any]]:
    """The results' `metrics` block: the definition of every metric used, by name (names: from the registry)."""
    if not isinstance(specs, Mapping):
        from mprtune.metrics.registry import METRICS

        specs = {name: METRICS[name] for name in specs}
    return {
        n: {
            "description": spec.description,
            "higher_is_better": spec.higher_is_better,
            "better": spec.better,
            "target": spec.target,
            "unit": spec.unit,
            "kind": spec.kind,
        }
        for n, spec in sorted(specs.items())
    }


def _path(parts: Iterable[Any]) -> str:
    text = "results"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _non_finite(value: Any, parts: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """Path of the first NaN/inf: JSON has no such numbers and the report could not format them."""
    if isinstance(value, float) and not math.isfinite(value):
        return parts
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, parts + (key,))
        if found is not None:
            return found
    return None


def validate_results(results: Any) -> None:
    """Raise MprtuneError naming the first offending key path; return None when valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(RESULTS_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(results))
    if error is not None:
        parts = list(error.absolute_path)
        message = error.message
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in error.validator_value if k not in error.instance]
            parts.append(missing[0])
            message = "missing required key"
        raise MprtuneError(f"invalid results: {_path(parts)}: {message}")
    bad = _non_finite(results)
    if bad is not None:
        raise MprtuneError(f"invalid results: {_path(bad)}: not a finite number")
    names: set[str] = set()
    for i, variant in enumerate(results["variants"]):
        if variant["variant"] in names:
            raise MprtuneError(
                f"invalid results: {_path(('variants', i, 'variant'))}: duplicate variant {variant['variant']!r}"
            )
        names.add(variant["variant"])
    for i, variant in enumerate(results["variants"]):
        for part in ("baseline", "tuned", "diff"):
            block = variant[part]["metrics"] if part != "diff" else variant["diff"]
            for name in block:
                if name not in results["metrics"]:
                    where = [("variants", i, part, "metrics", name), ("variants", i, part, name)][part == "diff"]
                    raise MprtuneError(f"invalid results: {_path(where)}: metric not defined in results.metrics")
    _check_sweeps(results)
    for i, sample in enumerate(results["samples"]):
        if sample["variant"] not in names:
            raise MprtuneError(
                f"invalid results: {_path(('samples', i, 'variant'))}: unknown variant {sample['variant']!r}"
            )


def _check_sweeps(results: dict[str, Any]) -> None:
    """Every sweep lists compared variants of that sweep, each with a value on every axis key."""
    by_name = {v["variant"]: v for v in results["variants"]}
    for i, sweep in enumerate(results["sweeps"]):
        keys = [key for axis in sweep["axes"] for key in axis]
        for j, name in enumerate(sweep["variants"]):
            where = _path(("sweeps", i, "variants", j))
            entry = by_name.get(name)
            if entry is None:
                raise MprtuneError(f"invalid results: {where}: unknown variant {name!r}")
            if entry["sweep"] is None or entry["sweep"]["name"] != sweep["name"]:
                raise MprtuneError(f"invalid results: {where}: variant {name!r} is not from sweep {sweep['name']!r}")
            missing = [key for key in keys if key not in entry["sweep"]["values"]]
            if missing:
                raise MprtuneError(f"invalid results: {where}: variant {name!r} has no value for {', '.join(missing)}")
