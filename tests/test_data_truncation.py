"""The truncation guard: estimate, a real (tiny) tokenizer, drop vs fail, LLaMA-Factory's own counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data_helpers import (
    PAWS_HEADER,
    SAMPLES,
    matrix_in,
    raw_matrix,
    read_rows,
    write_tsv,
)

from mprtune.data import prepare_data
from mprtune.data.truncation import (
    CHARS_PER_TOKEN,
    GENERIC_OVERHEAD,
    LLAMA3_OVERHEAD,
    LengthGuard,
    LengthLimit,
    estimate_tokens,
    limits_for,
)
from mprtune.errors import DataError

SHORT = [1, "The cat sat .", "The cat was sitting .", 1]  # 12+13 + 21 chars: fits a cutoff of 30 (estimate 25)
LONG = [
    2,
    "The town lies a long way north of the wide river .",
    "North of the wide river , a long way off , lies the town .",
    1,
]
TEST = [[9, "The lake is deep .", "The lake has depth .", 1]]


def source(tmp_path: Path, train: list[list]) -> Path:
    write_tsv(tmp_path / "src" / "paws" / "train.tsv", PAWS_HEADER, train)
    write_tsv(tmp_path / "src" / "paws" / "test.tsv", PAWS_HEADER, TEST)
    return tmp_path / "src"


def small_cutoff(tmp_path: Path, cutoff: int, models: dict | None = None):
    raw = raw_matrix(paws_only={"cutoff_len": cutoff}, paraphrase={"cutoff_len": cutoff})
    if models:
        for name, path in models.items():
            raw["models"][name]["path"] = path
    return matrix_in(tmp_path, raw)


def test_estimate_is_chars_over_3_5_rounded_up_plus_template():
    assert CHARS_PER_TOKEN == 3.5 and LLAMA3_OVERHEAD == 11
    assert estimate_tokens("x" * 35, "") == 10 + 11
    assert estimate_tokens("x" * 35, "y") == 11 + 11
    assert estimate_tokens("x" * 7, "", template="qwen") == 2 + GENERIC_OVERHEAD


def test_limits_come_from_every_variant_using_the_dataset(tmp_path):
    raw = raw_matrix()
    raw["predict"]["cutoff_len"] = 512
    matrix = matrix_in(tmp_path, raw)
    [train] = limits_for(matrix, "paws_train", tmp_path)
    assert train.cutoff_len == 256 and train.tokenizer_dir is None
    assert set(train.variants) == {
        f"{m}_{t}_lora" for m in ("llama32_3b", "llama31_8b") for t in ("paraphrase", "paws_only")
    }
    [evals] = limits_for(matrix, "paws_eval", tmp_path)
    assert evals.cutoff_len == 512


def test_overlong_rows_are_dropped_and_reported(tmp_path):
    rows = [SHORT] + [[10 + i, LONG[1].replace("long", f"long {'very ' * i}"), LONG[2], 1] for i in range(5)]
    report = prepare_data(small_cutoff(tmp_path, 30), ["paws_only"], str(source(tmp_path, rows)), tmp_path / "out")
    train = {f.file: f for f in report.files}["paws_train.jsonl"]
    assert train.rows == 2 and train.dropped_overlong == 10
    assert len(train.overlong_examples) == 3
    assert train.overlong_examples[0].startswith("paws-train-10-ab: ")
    assert "> cutoff_len 30" in train.overlong_examples[0] and "estimate" in train.overlong_examples[0]
    assert [r["id"] for r in read_rows(tmp_path / "out" / "paws_train.jsonl")] == ["paws-train-1-ab", "paws-train-1-ba"]


def test_on_overlong_fail_raises_and_writes_nothing(tmp_path):
    with pytest.raises(DataError, match=r"paws_train\.jsonl: 2 rows longer than cutoff_len .* e\.g\. paws-train-2-ab"):
        prepare_data(
            small_cutoff(tmp_path, 30),
            ["paws_only"],
            str(source(tmp_path, [SHORT, LONG])),
            tmp_path / "out",
            on_overlong="fail",
        )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from mprtune.models.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def test_local_tokenizer_counts_equal_llamafactory(tiny):
    """Our count for a row == len(prompt ids) + len(answer ids) from LLaMA-Factory's llama3 template."""
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template="llama3"))
    rows = [
        r
        for name in ("jfleg_eval", "paws_train", "kilt_qa_eval", "wiki_desc_train")
        for r in read_rows(SAMPLES / f"{name}.jsonl")[:5]
    ]
    limit = LengthLimit(10_000, "llama3", str(tiny), ("v",))
    guard = LengthGuard([limit])
    counter = guard._counters[0]
    ours = counter([r["instruction"] for r in rows], [r["output"] for r in rows])
    theirs = []
    for r in rows:
        prompt, answer = template.encode_oneturn(
            tokenizer, [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["output"]}]
        )
        theirs.append(len(prompt) + len(answer))
    assert ours == theirs
    # The tiny BPE splits "user"/"assistant"; the real Llama 3 tokenizer needs LLAMA3_OVERHEAD (11).
    overhead = counter([""], [""])[0]
    assert overhead >= LLAMA3_OVERHEAD


def test_demo_profile_uses_the_local_tiny_tokenizer(tmp_path, tiny):
    models = tmp_path / ".mprtune" / "models"
    models.mkdir(parents=True)
    shutil.copytree(tiny, models / "tiny-llama-a")
    raw = raw_matrix(paws_only={"cutoff_len": 50}, paraphrase={"cutoff_len": 50})
    raw["predict"]["cutoff_len"] = 256  # the eval row fits; training rows are checked against 50
    matrix = matrix_in(tmp_path, raw, profile="tiny")
    limits = limits_for(matrix, "paws_train", tmp_path)
    assert {lim.tokenizer_dir for lim in limits} == {str(models / "tiny-llama-a"), None}  # tiny-llama-b absent
    report = prepare_data(matrix, ["paws_only"], str(source(tmp_path, [SHORT, LONG])), tmp_path / "out")
    train = {f.file: f for f in report.files}["paws_train.jsonl"]
    assert train.dropped_overlong == 2 and train.rows == 2
    assert any("tokenizer" in line for line in train.length_check)
