"""`mprtune tiny-model`: deterministic, and LLaMA-Factory's llama3 template needs no new tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.models.tiny import LLAMA3_SPECIAL_TOKENS


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_tiny_model_is_deterministic_and_carries_llama3_tokens(tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = CliRunner().invoke(cli, ["tiny-model", str(tmp_path / name), "--seed", "3"])
        assert result.exit_code == 0, result.output
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    CliRunner().invoke(cli, ["tiny-model", str(tmp_path / "c"), "--seed", "4"])
    assert digest(tmp_path / "c")["model.safetensors"] != digest(tmp_path / "a")["model.safetensors"]

    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "a")
    vocab = len(tokenizer)
    for token in LLAMA3_SPECIAL_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template="llama3"))
    assert len(tokenizer) == vocab, "the llama3 template added tokens"
    prompt, answer = template.encode_oneturn(tokenizer, [{"role": "user", "content": "Fix: she go"},
                                                         {"role": "assistant", "content": "She goes."}])
    text = tokenizer.decode(prompt)
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nFix: she go<|eot_id|>")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert tokenizer.decode(answer) == "She goes.<|eot_id|>"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    assert model.config.vocab_size == vocab and sum(p.numel() for p in model.parameters()) < 1_000_000
