"""The documented contract of `mprtune compare`'s results: a JSON Schema plus its validator.

`results.json` is what people diff, archive and load into notebooks, so every key carries a
description here (in the spirit of lm-evaluation-harness' documented results), and the report
writer refuses a dict that does not match: a typo in the compare step fails loudly with the key
path instead of silently rendering an empty column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from mprtune.errors import MprtuneError
from mprtune.metrics.registry import BETTER, METRICS, UNITS
from mprtune.tasks import TASK_KINDS

SCHEMA_VERSION = 3
METRIC_KINDS = ("rate", "mean", "corpus")
TAG_PATTERN = r"^[A-Z][A-Z0-9_-]*$"

_NUM_OR_NULL = ["number", "null"]


def _p(type_: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "description": description, **extra}


def _obj(description: str, properties: dict[str, Any], optional: Iterable[str] = ()) -> dict[str, Any]:
    """A closed object: every property required unless listed, unknown keys rejected (typos)."""
    skip = set(optional)
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": [k for k in properties if k not in skip],
        "additionalProperties": False,
    }


def _stat(description: str, with_n: bool) -> dict[str, Any]:
    props = {
        "value": _p(
            "number",
            "The metric on all rows it covers, in its `unit`: GLEU/BLEU/iBLEU "
            "are points on 0-100, rates are fractions in [0, 1] (not percentages).",
        ),
        "ci_low": _p(
            _NUM_OR_NULL,
            "Lower bound of the percentile-bootstrap confidence interval; null when no interval was computed.",
        ),
        "ci_high": _p(
            _NUM_OR_NULL,
            "Upper bound of the percentile-bootstrap confidence interval; null when no interval was computed.",
        ),
    }
    if with_n:
        props["n"] = _p(
            "integer", "Number of rows the metric covers (knowledge QA metrics cover only QA rows).", minimum=0
        )
    return _obj(description, props)


_METRIC_NAMES = {"enum": sorted(METRICS), "description": "A metric name from mprtune.metrics.METRICS."}

_SYSTEM = _obj(
    "Scores and cost of one system (base model alone, or base model + LoRA adapter) on the eval rows.",
    {
        "metrics": {
            "type": "object",
            "description": "Metric name -> value with confidence interval (mprtune.metrics.score_rows).",
            "propertyNames": _METRIC_NAMES,
            "additionalProperties": _stat("One metric's value, interval and row count.", with_n=True),
        },
        "timing": _obj(
            "Generation cost measured during prediction, on the slot described by `resources`.",
            {
                "seconds_per_sample": _p(
                    "number",
                    "Batched prediction: wall-clock seconds divided by rows "
                    "(throughput, not the latency of one request).",
                    minimum=0,
                ),
                "samples_per_second": _p(
                    "number", "Batched prediction: rows generated per wall-clock second.", minimum=0
                ),
                "output_tokens_per_second": _p(
                    _NUM_OR_NULL,
                    "Batched prediction: generated tokens (model's tokenizer) per wall-clock second.",
                    minimum=0,
                ),
                "latency": {
                    "type": ["object", "null"],
                    "description": "One request at a time (batch 1) through LLaMA-Factory's chat engine, as a "
                    "deployed model answers; null when not measured.",
                    "properties": {
                        "requests": _p("integer", "Requests timed (the first eval rows).", minimum=1),
                        "p50_seconds": _p("number", "Median seconds per request.", minimum=0),
                        "p95_seconds": _p("number", "95th percentile seconds per request.", minimum=0),
                        "mean_seconds": _p("number", "Mean seconds per request.", minimum=0),
                        "output_tokens_per_second": _p(
                            _NUM_OR_NULL, "Generated tokens per second of request time.", minimum=0
                        ),
                    },
                    "required": ["requests", "p50_seconds", "p95_seconds", "mean_seconds", "output_tokens_per_second"],
                    "additionalProperties": False,
                },
                "peak_memory_mb": _p(
                    _NUM_OR_NULL, "Peak memory in MiB during prediction; null when not measured.", minimum=0
                ),
                "reserved_memory_mb": _p(
                    _NUM_OR_NULL,
                    "GPU only: peak memory reserved by PyTorch's caching "
                    "allocator in MiB (what the GPU really had to hold); "
                    "null on CPU.",
                    minimum=0,
                ),
                "memory_kind": _p(
                    "string",
                    "What peak_memory_mb measures: 'gpu' (peak allocated "
                    "accelerator memory) or 'rss' (peak process resident set).",
                    enum=["gpu", "rss"],
                ),
                "resources": _p(
                    "string",
                    "The slot the job ran on (GPU ids, or CPU threads of how many cores): "
                    "CPU slots share the machine, so compare timings within one slot kind.",
                ),
            },
        ),
    },
)

_PROVENANCE = _obj(
    "Where the numbers come from, to reproduce or audit them.",
    {
        "versions": {
            "type": "object",
            "description": "Package -> installed version (null when absent).",
            "additionalProperties": {"type": ["string", "null"], "description": "A version string."},
        },
        "git_commit": _p(
            ["string", "null"],
            "The project's git HEAD (`-dirty` with uncommitted tracked changes); null outside a git checkout.",
        ),
        "matrix_sha256": _p("string", "sha256 of the experiment matrix file."),
        "eval_data_sha256": {
            "type": "object",
            "description": "Eval file -> sha256 of the rows used (after --limit), in file order.",
            "additionalProperties": {"type": "string", "description": "A hex digest."},
        },
    },
)

_MODELS = {
    "type": "array",
    "description": "The base models compared, with what they really are.",
    "items": _obj(
        "One base model.",
        {
            "name": _p("string", "Model name from the matrix."),
            "path": _p("string", "Hub id or local path."),
            "random_weights": _p(
                "boolean",
                "True for randomly initialised test models: their scores prove "
                "the pipeline works, never that fine-tuning helped.",
            ),
            "note": _p(
                "string",
                "The matrix's description of the model (e.g. a small stand-in for a larger one); empty when none.",
            ),
        },
    ),
}

_AXIS_VALUE = {
    "type": ["string", "number", "boolean"],
    "description": "A value of a swept recipe key, as in the matrix.",
}

_VARIANT_SWEEP = {
    "type": ["object", "null"],
    "description": "The sweep this variant was expanded from, and its point on the grid; null for a variant "
    "listed by hand under `variants:`.",
    "properties": {
        "name": _p("string", "Sweep name from the matrix's `sweeps:` section (also the W&B run group)."),
        "values": {
            "type": "object",
            "description": "Swept recipe key -> this variant's value (extra_args keys as 'extra_args.<key>').",
            "additionalProperties": _AXIS_VALUE,
        },
    },
    "required": ["name", "values"],
    "additionalProperties": False,
}

_SWEEPS = {
    "type": "array",
    "description": "One entry per sweep with at least one compared variant (report.md has a section for each).",
    "items": _obj(
        "A sweep: a base variant (or model + task) times axes of recipe keys.",
        {
            "name": _p("string", "Sweep name from the matrix."),
            "base": _p("string", "The base variant's name, or '<model>/<task>' for a sweep without a base variant."),
            "axes": _p(
                "array",
                "The sweep's axes in matrix order; each lists its recipe keys (one key, or several "
                "zipped keys whose values move together). The grid is their cartesian product.",
                items={
                    "type": "array",
                    "description": "The keys of one axis.",
                    "minItems": 1,
                    "items": {"type": "string", "description": "A recipe key."},
                },
                minItems=1,
            ),
            "grid_size": _p("integer", "Number of variants the sweep expands to (compared or not).", minimum=1),
            "variants": _p(
                "array",
                "The compared variants of this sweep, in grid order (first axis slowest).",
                items={"type": "string", "description": "A variant name (one of variants[].variant)."},
                minItems=1,
            ),
        },
    ),
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mprtune compare results",
    **_obj(
        "Base vs LoRA-tuned comparison of every selected variant, written by `mprtune compare` "
        "as results.json and rendered into report.md.",
        {
            "schema_version": _p(
                "integer", "Version of this schema; bumped on incompatible changes.", const=SCHEMA_VERSION
            ),
            "created_at": _p(
                "string",
                "When the comparison ran, ISO 8601 (e.g. 2025-01-31T12:00:00Z); "
                "the only time-dependent value in the report.",
                format="date-time",
            ),
            "profile": _p("string", "Matrix profile the variants come from (e.g. 'reference', 'demo')."),
            "matrix": _p("string", "File name of the experiment matrix (e.g. 'mprtune.yaml')."),
            "confidence": _p(
                "number",
                "Confidence level of every interval in this file (e.g. 0.95).",
                exclusiveMinimum=0,
                exclusiveMaximum=1,
            ),
            "models": _MODELS,
            "provenance": _PROVENANCE,
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
                "propertyNames": _METRIC_NAMES,
                "additionalProperties": _obj(
                    "One metric's definition.",
                    {
                        "description": _p("string", "What the metric measures and how."),
                        "higher_is_better": _p(
                            "boolean",
                            "True only when a larger value is better (false for "
                            "lower-is-better, closer-to-target and descriptive "
                            "metrics: read `better`).",
                        ),
                        "better": _p(
                            "string",
                            "Which way is better: 'higher', 'lower', 'closer' (to `target`) "
                            "or 'none' (descriptive, no verdict).",
                            enum=list(BETTER),
                        ),
                        "target": _p(
                            _NUM_OR_NULL, "The value a 'closer' metric aims at (1.0 for length_ratio); null otherwise."
                        ),
                        "unit": _p(
                            "string",
                            "'points' (0-100 corpus scores: GLEU, BLEU, iBLEU), 'fraction' "
                            "(0-1; rates, QA F1, ROUGE-L), 'words' or 'ratio'.",
                            enum=list(UNITS),
                        ),
                        "kind": _p(
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
                "items": _obj(
                    "A LoRA variant compared against its base model on the task's eval sets.",
                    {
                        "variant": _p("string", "Variant name from the matrix (e.g. 'llama32_3b_grammar_lora')."),
                        "model": _p("string", "Base model name from the matrix (e.g. 'llama32_3b')."),
                        "model_path": _p("string", "Hub id or local path of the base model."),
                        "task": _p("string", "Task name from the matrix (e.g. 'grammar', 'paws_only')."),
                        "task_kind": _p("string", "Task kind; decides which metrics exist.", enum=list(TASK_KINDS)),
                        "eval_datasets": _p(
                            "array",
                            "Held-out datasets the rows come from.",
                            items={"type": "string", "description": "A dataset name."},
                            minItems=1,
                        ),
                        "n_rows": _p("integer", "Number of eval rows both systems answered.", minimum=1),
                        "baseline_key": _p(
                            "string", "Prediction key of the shared baseline run (base__<model>__<eval sets>)."
                        ),
                        "sweep": _VARIANT_SWEEP,
                        "baseline": _SYSTEM,
                        "tuned": _SYSTEM,
                        "diff": {
                            "type": "object",
                            "description": "Metric name -> tuned minus baseline on the same rows, with a "
                            "paired-bootstrap interval (mprtune.metrics.paired_diffs).",
                            "propertyNames": _METRIC_NAMES,
                            "additionalProperties": _stat("One metric's paired difference.", with_n=False),
                        },
                    },
                ),
            },
            "sweeps": _SWEEPS,
            "training": {
                "type": "array",
                "description": "One entry per variant's training run (also failed or missing ones).",
                "items": _obj(
                    "Outcome of one training run.",
                    {
                        "variant": _p("string", "Variant name."),
                        "state": _p(
                            "string",
                            "Run state as recorded by `mprtune train` (e.g. 'completed', 'failed', 'missing').",
                        ),
                        "train_seconds": _p(_NUM_OR_NULL, "Training wall-clock seconds; null if unknown.", minimum=0),
                        "final_loss": _p(_NUM_OR_NULL, "Last logged training loss; null if none was logged."),
                        "best_loss": _p(_NUM_OR_NULL, "Lowest logged training loss; null if none was logged."),
                        "steps": _p(["integer", "null"], "Optimizer steps completed; null if unknown.", minimum=0),
                        "samples_per_second": _p(
                            _NUM_OR_NULL, "Training throughput reported by the trainer.", minimum=0
                        ),
                        "adapter_path": _p(["string", "null"], "Where the LoRA adapter was saved; null if none."),
                        "adapter_bytes": _p(["integer", "null"], "Size of the adapter weights on disk.", minimum=0),
                    },
                ),
            },
            "samples": {
                "type": "array",
                "description": "Selected eval rows shown side by side (mprtune.report.select_samples).",
                "items": _obj(
                    "One eval row with both systems' outputs.",
                    {
                        "variant": _p("string", "Variant the row belongs to (one of variants[].variant)."),
                        "row": _p("integer", "0-based position of the row in the eval set.", minimum=0),
                        "id": _p("string", "Stable row id from the prepared data."),
                        "source": _p("string", "Model input without the task prompt."),
                        "reference": _p("string", "First reference output (shown in report.md)."),
                        "references": _p(
                            "array",
                            "Every reference of the row, in reference order (samples.csv lists them all).",
                            items={"type": "string", "description": "One reference output."},
                        ),
                        "baseline_output": _p("string", "Base model output."),
                        "tuned_output": _p("string", "Base model + adapter output."),
                        "baseline_tags": _p(
                            "array",
                            "Per-row tags of the baseline output (mprtune.report.tags_for).",
                            items={
                                "type": "string",
                                "pattern": TAG_PATTERN,
                                "description": "An upper-case tag such as EXACT or VERBOSE.",
                            },
                        ),
                        "tuned_tags": _p(
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
    return {name: spec.higher_is_better for name, spec in METRICS.items()}


def metric_definitions(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The results' `metrics` block for the metric names used (unknown names raise KeyError)."""
    return {
        n: {
            "description": METRICS[n].description,
            "higher_is_better": METRICS[n].higher_is_better,
            "better": METRICS[n].better,
            "target": METRICS[n].target,
            "unit": METRICS[n].unit,
            "kind": METRICS[n].kind,
        }
        for n in sorted(set(names))
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
