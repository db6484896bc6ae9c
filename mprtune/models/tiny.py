"""A tiny random Llama whose tokenizer carries the Llama-3 special tokens.

LLaMA-Factory's `llama3` template then works unchanged (no added tokens, no resize), so the demo
profile and the tests exercise exactly the code path a real Llama 3 takes, in seconds on a CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mprtune.errors import MprtuneError
from mprtune.io import tail
from mprtune.models.folders import check_replaceable, replace_folder

LLAMA3_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|finetune_right_pad_id|>",
    "<|python_tag|>",
)
# Used when no corpus is given: enough English for byte-level merges of common words.
DEFAULT_CORPUS = """\
The quick brown fox jumps over the lazy dog. She goes to school every day and he likes reading books.
I have been living in this city for three years. They were playing football when it started to rain.
What is the capital of France? Paris is the capital and largest city of France.
Can you tell me how to learn English quickly? How do I improve my writing skills?
A paraphrase says the same thing in other words. Fix the grammar of this sentence, please.
"""


@dataclass(frozen=True)
class TinyLlamaSpec:
    seed: int = 0
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    vocab_size: int = 1024  # BPE target including the byte alphabet and the special tokens
    max_positions: int = 1024


def _train_tokenizer(corpus: list[str], spec: TinyLlamaSpec):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=list(LLAMA3_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        model_max_length=spec.max_positions,
        clean_up_tokenization_spaces=False,
    )


def _corpus_lines(corpus_files: list[Path]) -> list[str]:
    lines = DEFAULT_CORPUS.splitlines()
    for path in sorted(corpus_files):  # only merges are learnt here: damaged lines are skipped, not fatal
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if path.suffix == ".jsonl" and line.strip():
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(row, dict):
                    lines.extend(str(v) for v in row.values() if isinstance(v, str))
            else:
                lines.append(line)
    return lines


def build_tiny_llama(
    out_dir: Path, spec: TinyLlamaSpec = TinyLlamaSpec(), corpus_files: list[Path] | None = None
) -> Path:
    """Write a seeded, deterministic tiny Llama + tokenizer to out_dir (atomically) and return it.

    An existing out_dir is replaced only if mprtune created it (it holds the marker file); any other
    folder (a run folder, the data dir, `.`) is refused, never deleted.
    """
    out_dir = Path(out_dir)
    check_replaceable(out_dir)  # before torch loads: a refusal is instant
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" bars are noise on a user's terminal
    tokenizer = _train_tokenizer(_corpus_lines(corpus_files or []), spec)
    special = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in LLAMA3_SPECIAL_TOKENS}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},  # Llama 3's RoPE base
        tie_word_embeddings=False,
        bos_token_id=special["<|begin_of_text|>"],
        eos_token_id=[special["<|end_of_text|>"], special["<|eot_id|>"], special["<|eom_id|>"]],
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, do_sample=False
    )

    def write(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)

    return replace_folder(out_dir, write, {"kind": "tiny-llama", "seed": spec.seed})


def build_log(out_dir: Path) -> Path:
    """Where a model build's output goes: beside the model folder (which is swapped in atomically)."""
    return out_dir.parent / f"{out_dir.name}.build.log"


def build_tiny_llama_logged(out_dir: Path, seed: int, corpus_files: list[Path] | None = None) -> Path:
    """`build_tiny_llama` in a child process whose output goes to `build_log(out_dir)`, not the terminal.

    Building imports transformers, whose accelerate import pulls in DeepSpeed (it prints "Setting
    accelerator to CPU" on every CPU machine) and writes progress bars: chatter for the log.
    """
    import subprocess
    import sys

    out_dir = Path(out_dir)
    check_replaceable(out_dir)  # refuse before spending a process on it
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    log = build_log(out_dir)
    command = [sys.executable, "-m", "mprtune.models.tiny", str(out_dir), str(seed), *map(str, corpus_files or [])]
    with log.open("w", encoding="utf-8") as handle:
        code = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, check=False
        ).returncode
    if code != 0:
        last = (tail(log, 1) or "no output").strip()
        raise MprtuneError(f"{out_dir}: building the tiny model failed (exit {code}): {last}; full log: {log}")
    return out_dir


def ensure_tiny_llama(out_dir: Path, seed: int, corpus_files: list[Path] | None = None) -> Path:
    """The cached tiny model at out_dir, built on first use (in a child process, output to its log)."""
    if (out_dir / "config.json").is_file() and (out_dir / "tokenizer.json").is_file():
        return out_dir
    return build_tiny_llama_logged(out_dir, seed, corpus_files)


def main(argv: list[str]) -> int:
    """`python -m mprtune.models.tiny OUT_DIR SEED [CORPUS_FILE...]` (what build_tiny_llama_logged runs)."""
    try:
        build_tiny_llama(Path(argv[0]), TinyLlamaSpec(seed=int(argv[1])), [Path(a) for a in argv[2:]])
    except MprtuneError as error:
        print(f"Error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
