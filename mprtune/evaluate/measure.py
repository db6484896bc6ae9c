"""`python -m mprtune.evaluate.measure CONFIG.yaml`: run LLaMA-Factory's prediction in this process and measure it.

Prediction jobs go through LLaMA-Factory's own `run_exp` exactly as `llamafactory-cli train CONFIG`
does for a single device (batched, greedy). Running it in-process lets us read what it does not
report: peak memory (GPU allocated and reserved, or peak RSS on CPU) and output tokens per second.
Then the same model answers a few rows one request at a time through LLaMA-Factory's ChatModel
(the engine its API server uses), which is the latency a user of a deployed model sees.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

MEASURE_FILE = "mprtune-measure.json"
LATENCY_PROMPTS = "mprtune-latency-prompts.json"  # written by compare: the rows to replay at batch 1
# Prediction-config keys that mean the same to LLaMA-Factory's chat engine (latency probe, serve).
CHAT_KEYS = (
    "model_name_or_path",
    "adapter_name_or_path",
    "template",
    "finetuning_type",
    "cutoff_len",
    "max_new_tokens",
    # how a conversation becomes a prompt: as the adapter was trained (mprtune.config.render.FORMATTING_KEYS)
    "default_system",
    "enable_thinking",
    "tool_format",
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def infer_dtype(predict_config: dict[str, Any]) -> str:
    """The dtype LLaMA-Factory's chat engine must use to compute as the prediction did: bf16/fp16
    training flags pin it; without them both paths infer it from the model and the device ("auto")."""
    if predict_config.get("bf16"):
        return "bfloat16"
    if predict_config.get("fp16"):
        return "float16"
    return "auto"


def chat_settings(predict_config: dict[str, Any]) -> dict[str, Any]:
    """Arguments for LLaMA-Factory's chat engine that generate as the prediction config did: the same
    model, adapter, template and lengths, greedy, in the same dtype."""
    settings = {key: predict_config[key] for key in CHAT_KEYS if predict_config.get(key) not in (None, "")}
    settings.update(do_sample=False, infer_backend="huggingface", infer_dtype=infer_dtype(predict_config))
    return settings


def latency_probe(config: dict[str, Any], prompts: list[Any]) -> dict[str, Any] | None:
    """Per-request latency (batch 1) and generation speed on `prompts`, as LLaMA-Factory's API would serve them."""
    if not prompts:
        return None
    from llamafactory.chat import ChatModel

    chat = ChatModel(chat_settings(config))
    seconds, tokens = [], 0
    for prompt in prompts:
        # a row of the user's own data may carry its own system prompt and earlier turns
        messages = prompt["messages"] if isinstance(prompt, dict) else [{"role": "user", "content": prompt}]
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        started = time.perf_counter()
        response = chat.chat([m for m in messages if m["role"] != "system"], system=system)[0]
        seconds.append(time.perf_counter() - started)
        tokens += response.response_length
    return {
        "requests": len(prompts),
        "p50_seconds": _percentile(seconds, 0.5),
        "p95_seconds": _percentile(seconds, 0.95),
        "mean_seconds": statistics.fmean(seconds),
        "output_tokens_per_second": tokens / sum(seconds) if sum(seconds) else None,
    }


def output_tokens(config: dict[str, Any], predictions: Path) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config["model_name_or_path"])
    texts = [json.loads(line)["predict"] for line in predictions.read_text(encoding="utf-8").splitlines() if line]
    return sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)


def resources() -> str:
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    threads = os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count())
    return f"GPU {devices}" if devices else f"CPU, {threads} thread(s) of {os.cpu_count()} cores"


def main(argv: list[str]) -> int:
    import yaml

    config_path = Path(argv[0])
    folder = config_path.parent
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    sys.argv = ["llamafactory-cli", str(config_path), *argv[1:]]
    import torch
    from llamafactory.train.tuner import run_exp

    started = time.perf_counter()
    run_exp()
    wall = time.perf_counter() - started
    on_gpu = torch.cuda.is_available()
    results = json.loads((folder / "predict_results.json").read_text())
    runtime = float(results.get("predict_runtime") or wall)
    tokens = output_tokens(config, folder / "generated_predictions.jsonl")
    try:
        prompts = json.loads((folder / LATENCY_PROMPTS).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        prompts = []
    latency = latency_probe(config, prompts)
    measured = {
        "wall_seconds": wall,
        "output_tokens": tokens,
        "output_tokens_per_second": tokens / runtime if runtime else None,
        "latency": latency,
        "peak_memory_mb": (
            torch.cuda.max_memory_allocated() / 2**20
            if on_gpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
        "reserved_memory_mb": torch.cuda.max_memory_reserved() / 2**20 if on_gpu else None,
        "memory_kind": "gpu" if on_gpu else "rss",
        "resources": resources(),
    }
    (folder / MEASURE_FILE).write_text(json.dumps(measured, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
