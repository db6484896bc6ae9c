"""`mprtune tiny-model`: deterministic, and LLaMA-Factory's llama3 template needs no new tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.models.tiny import LLAMA3_SPECIAL_TOKENS, TinyLlamaSpec, build_log, build_tiny_llama


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_a_failed_build_is_one_line_naming_its_log(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "weights.bin").write_text("not mprtune's")
    result = CliRunner().invoke(cli, ["tiny-model", str(tmp_path / "mine")])
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1
    assert "was not created by mprtune" in result.output
    assert (tmp_path / "mine" / "weights.bin").read_text() == "not mprtune's"


def test_a_build_that_fails_in_its_child_process_names_the_log(tmp_path: Path) -> None:
    from mprtune.errors import MprtuneError
    from mprtune.models.tiny import build_tiny_llama_logged

    missing = tmp_path / "gone.txt"  # disappeared between the command line check and the build
    with pytest.raises(MprtuneError) as error:
        build_tiny_llama_logged(tmp_path / "m", 0, [missing])
    message = str(error.value)
    assert len(message.splitlines()) == 1 and "building the tiny model failed (exit 1): FileNotFoundError" in message
    assert f"full log: {build_log(tmp_path / 'm')}" in message
    assert not (tmp_path / "m").exists()


def test_tiny_model_is_deterministic_and_carries_llama3_tokens(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["tiny-model", str(tmp_path / "a"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    # DeepSpeed's "Setting accelerator to CPU" and the progress bars go to the build log, not the terminal.
    log = build_log(tmp_path / "a")
    assert result.output.splitlines() == [f"Tiny Llama written to {tmp_path / 'a'} (build log: {log})"]
    assert log.is_file()
    build_tiny_llama(tmp_path / "b", TinyLlamaSpec(seed=3))  # in process: what the CLI's child runs
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    build_tiny_llama(tmp_path / "c", TinyLlamaSpec(seed=4))
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
    prompt, answer = template.encode_oneturn(
        tokenizer, [{"role": "user", "content": "Fix: she go"}, {"role": "assistant", "content": "She goes."}]
    )
    text = tokenizer.decode(prompt)
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nFix: she go<|eot_id|>")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert tokenizer.decode(answer) == "She goes.<|eot_id|>"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    assert model.config.vocab_size == vocab and sum(p.numel() for p in model.parameters()) < 1_000_000
