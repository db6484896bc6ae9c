"""A small, hand-written `mprtune compare` results dict: the golden report's input.

Two variants (a 3B grammar LoRA and an 8B paraphrase LoRA) with plausible numbers, a failed
training run, and per-row tags written by hand (not computed by mprtune.metrics, so a change
there does not churn the golden files). Samples go through `select_samples`, as compare does.
"""

from __future__ import annotations

import copy
from typing import Any

from mprtune.evaluate.samples import select_samples
from mprtune.evaluate.schema import SCHEMA_VERSION, metric_definitions

RECIPE: dict[str, Any] = {
    "stage": "sft",
    "finetuning_type": "lora",
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "lora_target": "q_proj,k_proj,v_proj,o_proj",
    "learning_rate": 5.0e-5,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.03,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 4,
    "num_train_epochs": 3,
    "bf16": True,
    "seed": 42,
    "report_to": "wandb",
    "extra_args": {"ddp_timeout": 180000000},
}


def _m(value: float, low: float | None, high: float | None, n: int) -> dict[str, Any]:
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def _d(value: float, low: float | None, high: float | None) -> dict[str, Any]:
    return {"value": value, "ci_low": low, "ci_high": high}


def _timing(spp: float, mem: float | None, kind: str = "gpu", latency: float = 0.58) -> dict[str, Any]:
    return {
        "seconds_per_sample": spp,
        "samples_per_second": round(1 / spp, 2),
        "peak_memory_mb": mem,
        "memory_kind": kind,
        "output_tokens_per_second": round(20 / spp, 1),
        "latency": {
            "requests": 20,
            "p50_seconds": latency,
            "p95_seconds": round(latency * 1.4, 3),
            "mean_seconds": round(latency * 1.1, 3),
            "output_tokens_per_second": 31.5,
        },
        "reserved_memory_mb": None if mem is None else round(mem * 1.12, 1),
        "resources": "GPU 0",
    }


# metric: (baseline (value, low, high), tuned (...), diff (...))
GRAMMAR = {
    "gleu": ((41.21, 39.84, 42.62), (53.83, 52.47, 55.14), (12.62, 10.81, 14.33)),
    "acceptable": ((0.2313, 0.2008, 0.2624), (0.4471, 0.4109, 0.4832), (0.2158, 0.1780, 0.2543)),
    "over_corrects": ((0.0803, 0.0616, 0.1004), (0.0750, 0.0562, 0.0937), (-0.0054, -0.0295, 0.0188)),
    "exact_match": ((0.1178, 0.0950, 0.1419), (0.3052, 0.2717, 0.3387), (0.1874, 0.1500, 0.2236)),
    "verbose": ((0.3400, 0.3062, 0.3742), (0.0201, 0.0107, 0.0308), (-0.3199, -0.3547, -0.2851)),
    "empty": ((0.0, 0.0, 0.0), (0.0134, 0.0054, 0.0228), (0.0134, 0.0054, 0.0228)),
    "length_gap": ((6.12, 5.41, 6.88), (1.34, 1.15, 1.55), (-4.78, -5.52, -4.09)),
    "output_words": ((24.61, 23.38, 25.92), (18.93, 18.21, 19.64), (-5.68, -6.91, -4.55)),
    "reference_words": ((18.72, 18.01, 19.44), (18.72, 18.01, 19.44), (0.0, 0.0, 0.0)),
    "length_ratio": ((1.3147, 1.2581, 1.3762), (1.0112, 0.9893, 1.0327), (-0.3035, -0.3690, -0.2427)),
}
PARAPHRASE = {
    "ibleu": ((10.306, 9.212, 11.398), (15.630, 14.318, 16.925), (5.324, 3.801, 6.902)),
    "bleu": ((18.42, 17.10, 19.81), (31.77, 30.20, 33.31), (13.35, 11.62, 15.07)),
    "self_bleu": ((22.15, 20.61, 23.70), (48.93, 47.02, 50.88), (26.78, 24.90, 28.71)),
    "copy_rate": ((0.006, 0.002, 0.011), (0.094, 0.077, 0.112), (0.088, 0.070, 0.107)),
    "exact_match": ((0.004, 0.001, 0.008), (0.012, 0.006, 0.019), (0.008, 0.001, 0.015)),
    "verbose": ((0.512, 0.481, 0.543), (0.031, 0.021, 0.042), (-0.481, -0.514, -0.448)),
    "empty": ((0.001, 0.0, 0.003), (0.0, 0.0, 0.0), (-0.001, -0.003, 0.0)),
    "length_gap": ((7.02, 6.61, 7.45), (3.11, 2.93, 3.30), (-3.91, -4.38, -3.46)),
    "output_words": ((21.34, 20.71, 21.98), (15.22, 14.86, 15.57), (-6.12, -6.74, -5.49)),
    "reference_words": ((14.81, 14.42, 15.20), (14.81, 14.42, 15.20), (0.0, 0.0, 0.0)),
    "length_ratio": ((1.441, 1.398, 1.487), (1.028, 1.004, 1.051), (-0.413, -0.461, -0.367)),
}


def _systems(table: dict[str, tuple], n: int) -> tuple[dict, dict, dict]:
    base = {k: _m(*b, n) for k, (b, _, _) in table.items()}
    tuned = {k: _m(*t, n) for k, (_, t, _) in table.items()}
    diff = {k: _d(*d) for k, (_, _, d) in table.items()}
    return base, tuned, diff


def _tags(
    output: str,
    exact: bool = False,
    verbose: bool = False,
    acceptable: bool | None = None,
    over: bool | None = None,
    copy_: bool | None = None,
) -> dict[str, Any]:
    """A `per_row`-shaped dict; None leaves out a key the task kind does not have."""
    row: dict[str, Any] = {
        "exact": exact,
        "verbose": verbose,
        "verbose_reasons": ["preamble"] if verbose else [],
        "length_words": len(output.split()),
        "reference_words": 0,
    }
    for key, value in (("acceptable", acceptable), ("over_corrects", over), ("copy", copy_)):
        if value is not None:
            row[key] = value
    return row


def _g(ident: str, src: str, ref: str, base: str, tuned: str, b: dict, t: dict) -> dict[str, Any]:
    return {
        "id": ident,
        "source": src,
        "reference": [ref, ref.lower()],
        "baseline_output": base,
        "tuned_output": tuned,
        "baseline_row": _tags(base, **b),
        "tuned_row": _tags(tuned, **t),
    }


GRAMMAR_ROWS = [
    _g(
        "jfleg-0000",
        "i want to goes to school tomorow .",
        "I want to go to school tomorrow .",
        "Here is the corrected sentence:\n\nI want to go to school tomorrow.",
        "I want to go to school tomorrow .",
        {"verbose": True, "acceptable": False, "over": False},
        {"exact": True, "acceptable": True, "over": False},
    ),
    _g(
        "jfleg-0001",
        "He have a cat and a dog .",
        "He has a cat and a dog .",
        "He has a cat and a dog .",
        "He has a cat and a dog .",
        {"exact": True, "acceptable": True, "over": False},
        {"exact": True, "acceptable": True, "over": False},
    ),
    _g(
        "jfleg-0002",
        "Their is many reason for this .",
        "There are many reasons for this .",
        "There are many reasons for this.",
        "There is many reasons for this .",
        {"acceptable": True, "over": False},
        {"acceptable": False, "over": False},
    ),
    _g(
        "jfleg-0003",
        "The price is 5 | 10 dolars .",
        "The price is 5 | 10 dollars .",
        "The price is 5 | 10 dollars.",
        "The price is 5 | 10 dollars .",
        {"acceptable": True, "over": False},
        {"exact": True, "acceptable": True, "over": False},
    ),
    _g(
        "jfleg-0004",
        "Nowadays people uses internet for every things .",
        "Nowadays people use the internet for everything .",
        "In today's world, people rely on the *internet* for nearly everything they do.",
        "Nowadays people use the internet for everything .",
        {"verbose": True, "acceptable": False, "over": True},
        {"exact": True, "acceptable": True, "over": False},
    ),
    _g(
        "jfleg-0005",
        "I am agree with this opinion .",
        "I agree with this opinion .",
        "I agree with this opinion.",
        "I completely agree with this opinion .",
        {"acceptable": True, "over": False},
        {"acceptable": True, "over": False},
    ),
    _g(
        "jfleg-0006",
        "she dont like apples",
        "She doesn't like apples .",
        "She doesn't like apples.",
        "She does not like the apples at all .",
        {"acceptable": True, "over": False},
        {"acceptable": False, "over": True},
    ),
]


def _p(ident: str, src: str, ref: str, base: str, tuned: str, b: dict, t: dict) -> dict[str, Any]:
    return {
        "id": ident,
        "source": src,
        "reference": ref,
        "baseline_output": base,
        "tuned_output": tuned,
        "baseline_row": _tags(base, copy_=False, **b),
        "tuned_row": _tags(tuned, **t),
    }


PARAPHRASE_ROWS = [
    _p(
        "paws-0000",
        "The film was released in 1998 and received mixed reviews .",
        "Released in 1998 , the film got mixed reviews .",
        'Sure! Here\'s a paraphrase:\n"The movie came out in 1998 and got mixed reviews."',
        "Released in 1998 , the film received mixed reviews .",
        {"verbose": True},
        {"copy_": False},
    ),
    _p(
        "qqp-0000",
        "How do I learn Python quickly?",
        "What is the fastest way to learn Python?",
        "What is the quickest way to learn Python?",
        "What is the fastest way to learn Python?",
        {},
        {"exact": True, "copy_": False},
    ),
    _p(
        "paws-0001",
        "He moved to Paris in 2001 .",
        "In 2001 , he moved to Paris .",
        "In 2001, he relocated to Paris.",
        "He moved to Paris in 2001 .",
        {},
        {"copy_": True},
    ),
    _p(
        "qqp-0001",
        "What are the best books on economics?",
        "Which books on economics are the best?",
        "Which economics books are the best to read?",
        "Which are the best books on economics?",
        {},
        {"copy_": False},
    ),
    _p(
        "paws-0002",
        "The river flows north through the valley .",
        "Through the valley , the river flows north .",
        "The river runs north through the valley.",
        "The river runs north through the valley .",
        {},
        {"copy_": False},
    ),
    _p(
        "qqp-0002",
        "She won the award twice .",
        "She received the award two times .",
        "She won the award two times.",
        "She won the award on two occasions .",
        {},
        {"copy_": False},
    ),
]

LOSS_CURVES = {
    "llama32_3b_grammar_lora": [(s, round(1.9 * 0.985**s + 0.6, 4)) for s in range(10, 430, 10)],
    "llama31_8b_paraphrase_lora": [(s, round(1.6 * 0.993**s + 0.87, 4)) for s in range(10, 2660, 10)],
    "llama31_8b_knowledge_lora": [(10, 2.31), (20, 1.9321)],
}


def results() -> dict[str, Any]:
    """A fresh copy each call, so tests can mutate it."""
    g_base, g_tuned, g_diff = _systems(GRAMMAR, 747)
    p_base, p_tuned, p_diff = _systems(PARAPHRASE, 1000)
    return copy.deepcopy(
        {
            "schema_version": SCHEMA_VERSION,
            "created_at": "2025-03-14T09:26:53Z",
            "profile": "reference",
            "matrix": "mprtune.yaml",
            "confidence": 0.95,
            "models": [
                {"name": "llama32_3b", "path": "meta-llama/Llama-3.2-3B-Instruct", "random_weights": False, "note": ""},
                {"name": "llama31_8b", "path": "meta-llama/Llama-3.1-8B-Instruct", "random_weights": False, "note": ""},
            ],
            "provenance": {
                "versions": {
                    "mprtune": "0.1.0",
                    "llamafactory": "0.9.5",
                    "transformers": "5.6.0",
                    "peft": "0.18.1",
                    "torch": "2.14.1",
                },
                "git_commit": "0123456789abcdef0123456789abcdef01234567",
                "matrix_sha256": "a" * 64,
                "eval_data_sha256": {"data/jfleg_eval.jsonl": "b" * 64},
            },
            "recipe": RECIPE,
            "metrics": metric_definitions(set(GRAMMAR) | set(PARAPHRASE)),
            "variants": [
                {
                    "variant": "llama32_3b_grammar_lora",
                    "model": "llama32_3b",
                    "model_path": "meta-llama/Llama-3.2-3B-Instruct",
                    "task": "grammar",
                    "task_kind": "grammar",
                    "eval_datasets": ["jfleg_eval"],
                    "n_rows": 747,
                    "baseline_key": "base__llama32_3b__jfleg_eval",
                    "sweep": None,
                    "baseline": {"metrics": g_base, "timing": _timing(0.0412, 8234.5)},
                    "tuned": {"metrics": g_tuned, "timing": _timing(0.0518, 8412.0)},
                    "diff": g_diff,
                },
                {
                    "variant": "llama31_8b_paraphrase_lora",
                    "model": "llama31_8b",
                    "model_path": "meta-llama/Llama-3.1-8B-Instruct",
                    "task": "paraphrase",
                    "task_kind": "paraphrase",
                    "eval_datasets": ["paws_eval", "qqp_eval"],
                    "n_rows": 1000,
                    "baseline_key": "base__llama31_8b__paws_eval+qqp_eval",
                    "sweep": None,
                    "baseline": {"metrics": p_base, "timing": _timing(0.0935, 17890.2)},
                    "tuned": {"metrics": p_tuned, "timing": _timing(0.0874, 18102.7)},
                    "diff": p_diff,
                },
            ],
            "sweeps": [],
            "training": [
                {
                    "variant": "llama32_3b_grammar_lora",
                    "state": "completed",
                    "train_seconds": 1843.2,
                    "final_loss": 0.6123,
                    "best_loss": 0.5981,
                    "steps": 420,
                    "samples_per_second": 12.14,
                    "adapter_path": "runs/llama32_3b_grammar_lora",
                    "adapter_bytes": 18353208,
                },
                {
                    "variant": "llama31_8b_paraphrase_lora",
                    "state": "completed",
                    "train_seconds": 40215.7,
                    "final_loss": 0.8817,
                    "best_loss": 0.8702,
                    "steps": 2652,
                    "samples_per_second": 10.6,
                    "adapter_path": "runs/llama31_8b_paraphrase_lora",
                    "adapter_bytes": 27266400,
                },
                {
                    "variant": "llama31_8b_knowledge_lora",
                    "state": "failed",
                    "train_seconds": 312.4,
                    "final_loss": 1.9321,
                    "best_loss": 1.9321,
                    "steps": 20,
                    "samples_per_second": None,
                    "adapter_path": None,
                    "adapter_bytes": None,
                },
            ],
            "samples": select_samples(
                {"llama32_3b_grammar_lora": GRAMMAR_ROWS, "llama31_8b_paraphrase_lora": PARAPHRASE_ROWS}
            ),
        }
    )
