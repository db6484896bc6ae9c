"""Truncation guard: rows that LLaMA-Factory would silently cut are found before training.

LLaMA-Factory 0.9.5 (`infer_seqlen`) fits prompt + answer into `cutoff_len` by cutting the prompt
from the right, which removes the assistant header: the row then trains on garbage. At predict
time the label counts against cutoff_len too. So a row *fits* a variant iff

    tokens(row) = len(template prompt ids) + len(template answer ids) <= cutoff_len

For the `llama3` template (exactly what LLaMA-Factory encodes):

    prompt ids = [bos] + encode("<|start_header_id|>user<|end_header_id|>\\n\\n{instruction}<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\\n\\n")
    answer ids = encode("{output}<|eot_id|>")

With the real Llama 3 tokenizer the template costs LLAMA3_OVERHEAD = 11 tokens (bos, eot x2, two
headers of start/role/end/"\\n\\n"; each of those is one token in Llama 3). Measured with the tiny
test tokenizer the template costs more (its BPE splits "assistant"), which the exact count covers.

Which tokenizer: the variant's own, when its model path is a local folder holding a tokenizer
(``AutoTokenizer.from_pretrained(path, local_files_only=True)``, path relative to the matrix's
folder); otherwise (a hub id such as meta-llama/Llama-3.2-3B-Instruct) an estimate:

    tokens ~= ceil((len(instruction) + len(output)) / CHARS_PER_TOKEN) + overhead

with CHARS_PER_TOKEN = 3.5 (English BPE averages ~4 characters per token, so this over-counts;
misspelt or tokenised text as in JFLEG sits near 3.5-4) and overhead = LLAMA3_OVERHEAD for llama3,
GENERIC_OVERHEAD = 32 for any other template. A non-llama3 template with a local tokenizer
counts instruction and output tokens exactly plus GENERIC_OVERHEAD.

Limits: every variant whose task lists the dataset under `train` is checked against its training
cutoff_len (recipe override or task cutoff_len); under `eval`, against `predict.cutoff_len` when
set, else the same. A row is over-long when it exceeds any of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.config.matrix import Matrix
from mprtune.data.common import Overlong
from mprtune.tasks import CHARS_PER_TOKEN

LLAMA3_TEMPLATE = "llama3"
LLAMA3_USER = (
    "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)
LLAMA3_ASSISTANT = "{content}<|eot_id|>"
LLAMA3_OVERHEAD = 11
GENERIC_OVERHEAD = 32
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(frozen=True)
class LengthLimit:
    """One (cutoff_len, way of counting) pair that every row of a dataset must fit."""

    cutoff_len: int
    template: str
    tokenizer_dir: str | None  # local tokenizer folder, or None for the estimate
    variants: tuple[str, ...]

    @property
    def method(self) -> str:
        return f"tokenizer {self.tokenizer_dir}" if self.tokenizer_dir else f"estimate chars/{CHARS_PER_TOKEN}"

    def describe(self) -> str:
        return f"cutoff_len {self.cutoff_len}, {self.template}, {self.method}: {', '.join(self.variants)}"


def local_tokenizer_dir(model_path: str, root: Path) -> str | None:
    """The model path as a local folder holding a tokenizer, else None (hub ids are never fetched)."""
    path = Path(model_path)
    if not path.is_absolute():
        path = root / path
    if path.is_dir() and any((path / name).is_file() for name in TOKENIZER_FILES):
        return str(path)
    return None


def limits_for(matrix: Matrix, dataset: str, root: Path) -> list[LengthLimit]:
    """The length limits of one dataset: one per distinct (cutoff, template, tokenizer) of its variants."""
    grouped: dict[tuple[int, str, str | None], list[str]] = {}
    for variant in matrix.variants.values():
        task = variant.task
        train_cut = int(variant.recipe.get("cutoff_len", task.cutoff_len))
        cuts = []
        if dataset in task.train:
            cuts.append(train_cut)
        if dataset in task.eval:
            cuts.append(int(matrix.predict.get("cutoff_len", train_cut)))
        for cut in cuts:
            key = (cut, variant.model.template, local_tokenizer_dir(variant.model.path, root))
            grouped.setdefault(key, []).append(variant.name)
    if not grouped:  # no variant trains on it: the tasks' own cutoff_len, estimated
        for task in matrix.tasks.values():
            if dataset in task.train or dataset in task.eval:
                grouped.setdefault((task.cutoff_len, LLAMA3_TEMPLATE, None), []).append(f"task {task.name}")
    return [
        LengthLimit(cut, template, tok, tuple(dict.fromkeys(names)))
        for (cut, template, tok), names in sorted(grouped.items(), key=lambda kv: (kv[0][0], str(kv[0][2])))
    ]


def estimate_tokens(instruction: str, output: str, template: str = LLAMA3_TEMPLATE) -> int:
    overhead = LLAMA3_OVERHEAD if template == LLAMA3_TEMPLATE else GENERIC_OVERHEAD
    return math.ceil((len(instruction) + len(output)) / CHARS_PER_TOKEN) + overhead


Counter = Callable[[list[str], list[str]], list[int]]


def _tokenizer_counter(tokenizer_dir: str, template: str) -> Counter:
    from transformers import AutoTokenizer  # heavy: only when a local tokenizer exists

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    bos = 1 if tokenizer.bos_token_id is not None else 0

    def encode(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def count(instructions: list[str], outputs: list[str]) -> list[int]:
        if template == LLAMA3_TEMPLATE:
            prompts = encode([LLAMA3_USER.format(content=t) for t in instructions])
            answers = encode([LLAMA3_ASSISTANT.format(content=t) for t in outputs])
            return [bos + p + a for p, a in zip(prompts, answers, strict=True)]
        return [p + a + GENERIC_OVERHEAD for p, a in zip(encode(instructions), encode(outputs), strict=True)]

    return count


def token_counter(limit: LengthLimit) -> Counter:
    """How a limit counts tokens: its local tokenizer with the template, or the estimate."""
    if limit.tokenizer_dir:
        return _tokenizer_counter(limit.tokenizer_dir, limit.template)
    return lambda ins, outs: [estimate_tokens(i, o, limit.template) for i, o in zip(ins, outs, strict=True)]


class LengthGuard:
    """Callable on a batch of prepared rows: None for a row that fits every limit, else an Overlong."""

    def __init__(self, limits: list[LengthLimit], counters: dict[str, Counter] | None = None) -> None:
        self.limits = limits
        cache = counters if counters is not None else {}
        self._counters = []
        for limit in limits:
            key = f"{limit.tokenizer_dir}|{limit.template}"
            if key not in cache:
                cache[key] = token_counter(limit)
            self._counters.append(cache[key])

    def __call__(self, rows: list[dict[str, Any]]) -> list[Overlong | None]:
        verdicts: list[Overlong | None] = [None] * len(rows)
        if not rows:
            return verdicts
        instructions = [r["instruction"] + ("\n" + r["input"] if r.get("input") else "") for r in rows]
        outputs = [r["output"] for r in rows]
        for limit, counter in zip(self.limits, self._counters, strict=True):
            for i, tokens in enumerate(counter(instructions, outputs)):
                if tokens > limit.cutoff_len:
                    worst = verdicts[i]
                    if worst is None or tokens - limit.cutoff_len > worst.tokens - worst.cutoff_len:
                        verdicts[i] = Overlong(
                            str(rows[i]["id"]), tokens, limit.cutoff_len, limit.variants, limit.method
                        )
        return verdicts
