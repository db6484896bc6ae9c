"""The building blocks of the results schema (evaluate/schema.py): described properties and objects,
and the parts for one system, the provenance, the models and the sweeps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NUM_OR_NULL = ["number", "null"]


def prop(type_: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "description": description, **extra}


def closed_object(description: str, properties: dict[str, Any], optional: Iterable[str] = ()) -> dict[str, Any]:
    """A closed object: every property required unless listed, unknown keys rejected (typos)."""
    skip = set(optional)
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": [k for k in properties if k not in skip],
        "additionalProperties": False,
    }


def stat_schema(description: str, with_n: bool) -> dict[str, Any]:
    props = {
        "value": prop(
            "number",
            "The metric on all rows it covers, in its `unit`: GLEU/BLEU/iBLEU "
            "are points on 0-100, rates are fractions in [0, 1] (not percentages).",
        ),
        "ci_low": prop(
            NUM_OR_NULL,
            "Lower bound of the percentile-bootstrap confidence interval; null when no interval was computed.",
        ),
        "ci_high": prop(
            NUM_OR_NULL,
            "Upper bound of the percentile-bootstrap confidence interval; null when no interval was computed.",
        ),
    }
    if with_n:
        props["n"] = prop(
            "integer", "Number of rows the metric covers (knowledge QA metrics cover only QA rows).", minimum=0
        )
    return closed_object(description, props)


METRIC_NAMES = {
    "pattern": r"^[A-Za-z_][A-Za-z0-9_.-]*$",
    "description": "A metric name: from mprtune.metrics.METRICS, a task kind's own, or a user metric of the matrix.",
}
_NAME_LIST = {"type": "string", "description": "A metric name (defined in results.metrics)."}
PRESENTATION = closed_object(
    "What the report leads with for this variant, from its task kind.",
    {
        "primary": prop("string", "The metric of the summary headline and the plot."),
        "summary": prop("array", "Metrics of the one-line summary, in order.", items=_NAME_LIST),
        "table": prop("array", "Leading rows of the task's metric table, in order.", items=_NAME_LIST),
        "panel": prop("array", "Plot candidates: the one that moved most is drawn.", items=_NAME_LIST),
        "panel_group": prop("string", "Variants with the same group share one plot panel (the kind's name)."),
        "answer": prop("string", "How the answer is taken out of an output before scoring ('' = the whole output)."),
    },
)

SYSTEM = closed_object(
    "Scores and cost of one system (base model alone, or base model + LoRA adapter) on the eval rows.",
    {
        "metrics": {
            "type": "object",
            "description": "Metric name -> value with confidence interval (mprtune.metrics.score_rows).",
            "propertyNames": METRIC_NAMES,
            "additionalProperties": stat_schema("One metric's value, interval and row count.", with_n=True),
        },
        "timing": closed_object(
            "Generation cost measured during prediction, on the slot described by `resources`.",
            {
                "seconds_per_sample": prop(
                    "number",
                    "Batched prediction: wall-clock seconds divided by rows "
                    "(throughput, not the latency of one request).",
                    minimum=0,
                ),
                "samples_per_second": prop(
                    "number", "Batched prediction: rows generated per wall-clock second.", minimum=0
                ),
                "output_tokens_per_second": prop(
                    NUM_OR_NULL,
                    "Batched prediction: generated tokens (model's tokenizer) per wall-clock second.",
                    minimum=0,
                ),
                "latency": {
                    "type": ["object", "null"],
                    "description": "One request at a time (batch 1) through LLaMA-Factory's chat engine, as a "
                    "deployed model answers; null when not measured.",
                    "properties": {
                        "requests": prop("integer", "Requests timed (the first eval rows).", minimum=1),
                        "p50_seconds": prop("number", "Median seconds per request.", minimum=0),
                        "p95_seconds": prop("number", "95th percentile seconds per request.", minimum=0),
                        "mean_seconds": prop("number", "Mean seconds per request.", minimum=0),
                        "output_tokens_per_second": prop(
                            NUM_OR_NULL, "Generated tokens per second of request time.", minimum=0
                        ),
                    },
                    "required": ["requests", "p50_seconds", "p95_seconds", "mean_seconds", "output_tokens_per_second"],
                    "additionalProperties": False,
                },
                "peak_memory_mb": prop(
                    NUM_OR_NULL, "Peak memory in MiB during prediction; null when not measured.", minimum=0
                ),
                "reserved_memory_mb": prop(
                    NUM_OR_NULL,
                    "GPU only: peak memory reserved by PyTorch's caching "
                    "allocator in MiB (what the GPU really had to hold); "
                    "null on CPU.",
                    minimum=0,
                ),
                "memory_kind": prop(
                    "string",
                    "What peak_memory_mb measures: 'gpu' (peak allocated "
                    "accelerator memory) or 'rss' (peak process resident set).",
                    enum=["gpu", "rss"],
                ),
                "resources": prop(
                    "string",
                    "The slot the job ran on (GPU ids, or CPU threads of how many cores): "
                    "CPU slots share the machine, so compare timings within one slot kind.",
                ),
            },
        ),
        "details": {
            "type": "object",
            "description": "Non-scalar results of the task kind, e.g. a custom task's `confusion`: "
            "{labels, columns (labels + '(out of label)' + '(no answer)'), matrix (rows gold, counts)}.",
        },
    },
    optional=("details",),
)

PROVENANCE = closed_object(
    "Where the numbers come from, to reproduce or audit them.",
    {
        "versions": {
            "type": "object",
            "description": "Package -> installed version (null when absent).",
            "additionalProperties": {"type": ["string", "null"], "description": "A version string."},
        },
        "git_commit": prop(
            ["string", "null"],
            "The project's git HEAD (`-dirty` with uncommitted tracked changes); null outside a git checkout.",
        ),
        "matrix_sha256": prop("string", "sha256 of the experiment matrix file."),
        "eval_data_sha256": {
            "type": "object",
            "description": (
                "Eval file (relative to the project root; absolute only outside it) -> sha256 of the rows "
                "used (after --limit), in file order."
            ),
            "additionalProperties": {"type": "string", "description": "A hex digest."},
        },
    },
)

MODELS = {
    "type": "array",
    "description": "The base models compared, with what they really are.",
    "items": closed_object(
        "One base model.",
        {
            "name": prop("string", "Model name from the matrix."),
            "path": prop("string", "Hub id or local path."),
            "random_weights": prop(
                "boolean",
                "True for randomly initialised test models: their scores prove "
                "the pipeline works, never that fine-tuning helped.",
            ),
            "note": prop(
                "string",
                "The matrix's description of the model (e.g. a small stand-in for a larger one); empty when none.",
            ),
        },
    ),
}

AXIS_VALUE = {
    "type": ["string", "number", "boolean"],
    "description": "A value of a swept recipe key, as in the matrix.",
}

VARIANT_SWEEP = {
    "type": ["object", "null"],
    "description": "The sweep this variant was expanded from, and its point on the grid; null for a variant "
    "listed by hand under `variants:`.",
    "properties": {
        "name": prop("string", "Sweep name from the matrix's `sweeps:` section (also the W&B run group)."),
        "values": {
            "type": "object",
            "description": "Swept recipe key -> this variant's value (extra_args keys as 'extra_args.<key>').",
            "additionalProperties": AXIS_VALUE,
        },
    },
    "required": ["name", "values"],
    "additionalProperties": False,
}

SWEEPS = {
    "type": "array",
    "description": "One entry per sweep with at least one compared variant (report.md has a section for each).",
    "items": closed_object(
        "A sweep: a base variant (or model + task) times axes of recipe keys.",
        {
            "name": prop("string", "Sweep name from the matrix."),
            "base": prop("string", "The base variant's name, or '<model>/<task>' for a sweep without a base variant."),
            "axes": prop(
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
            "grid_size": prop("integer", "Number of variants the sweep expands to (compared or not).", minimum=1),
            "variants": prop(
                "array",
                "The compared variants of this sweep, in grid order (first axis slowest).",
                items={"type": "string", "description": "A variant name (one of variants[].variant)."},
                minItems=1,
            ),
        },
    ),
}
