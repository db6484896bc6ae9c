"""Bundled samples (data/samples) are reproducible from data/samples/raw, sized for the demo, and
every prepared dataset is loaded by LLaMA-Factory's own loader with its assistant header intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_helpers import (
    QQP_HEADER,
    RAW,
    ROOT,
    SAMPLES,
    jfleg_dir,
    matrix_in,
    raw_matrix,
    read_rows,
)

from mprtune.config.matrix import load_matrix
from mprtune.data import prepare_data
from mprtune.data.common import file_sha256
from mprtune.metrics import detokenize

SAMPLE_TASKS = ["grammar", "paraphrase", "knowledge"]
ASSISTANT_HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n"


def sample_files() -> list[str]:
    return sorted(p.name for p in SAMPLES.glob("*.jsonl"))


def test_samples_are_prepare_data_output_of_raw(tmp_path):
    """Re-running `prepare-data grammar paraphrase knowledge --source data/samples/raw` reproduces them."""
    matrix = load_matrix(ROOT / "mprtune.yaml")
    report = prepare_data(matrix, SAMPLE_TASKS, str(RAW), tmp_path)
    assert sorted(f.file for f in report.files) == sample_files()
    for name in sample_files():
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), f"{name}: regenerate the samples"
    ours = json.loads((SAMPLES / "manifest.json").read_text())["files"]
    fresh = json.loads((tmp_path / "manifest.json").read_text())["files"]
    strip = lambda entries: {k: {f: v for f, v in e.items() if f != "length_check"} for k, e in entries.items()}
    assert strip(ours) == strip(fresh)
    assert not (tmp_path / "dataset_info.json").exists()  # `mprtune render` owns it


def test_samples_manifest_matches_files():
    files = json.loads((SAMPLES / "manifest.json").read_text())["files"]
    assert sorted(files) == sample_files()
    for name, entry in files.items():
        assert entry["rows"] == len(read_rows(SAMPLES / name)) and entry["sha256"] == file_sha256(SAMPLES / name)
        assert entry["source"].startswith("data/samples/raw/")
        assert entry["skipped_bad"] == 0 and entry["dropped_overlong"] == 0


def test_samples_sizes_and_every_matrix_dataset_present():
    matrix = load_matrix(ROOT / "mprtune.yaml", "tiny")
    assert matrix.data_dir == "data/samples"
    rows = {name: len(read_rows(SAMPLES / name)) for name in sample_files()}
    for task in matrix.tasks.values():
        train = sum(rows[matrix.datasets[d].file] for d in task.train)
        evals = sum(rows[matrix.datasets[d].file] for d in task.eval)
        assert 40 <= train <= 84, (task.name, train)
        assert 8 <= evals <= 24, (task.name, evals)
    for task in SAMPLE_TASKS:
        assert sum(rows[matrix.datasets[d].file] for d in matrix.tasks[task].eval) >= 16
    for name in sample_files():
        for row in read_rows(SAMPLES / name):
            text = row["instruction"].split(": ", 1)[1]
            assert len(text.split()) <= 25 and len(row["output"].split()) <= 25, row["id"]
            if "references" in row:  # JFLEG/PAWS rows show the model (and LLaMA-Factory's label) normal text
                expected = (
                    (detokenize(row["references"][0]), detokenize(row["source"]))
                    if name.startswith(("jfleg", "paws"))
                    else (row["references"][0], row["source"])
                )
                assert (row["output"], text) == expected, row["id"]


def test_samples_eval_and_train_disjoint():
    for train_name, eval_name in [
        ("jfleg_train", "jfleg_eval"),
        ("paws_train", "paws_eval"),
        ("qqp_train", "qqp_eval"),
        ("kilt_qa_train", "kilt_qa_eval"),
        ("wiki_desc_train", "wiki_desc_eval"),
    ]:
        held = set()
        for row in read_rows(SAMPLES / f"{eval_name}.jsonl"):
            held |= {row["source"], *row["references"]}
        for row in read_rows(SAMPLES / f"{train_name}.jsonl"):
            assert row["instruction"].split(": ", 1)[1] not in held, row["id"]
            if train_name != "kilt_qa_train":  # short answers ("Paris") may repeat across questions
                assert row["output"] not in held, row["id"]


# ----------------------------------------------------------------------------- LLaMA-Factory's own loader


@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    from mprtune.models.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def lf_load(dataset_dir: Path, name: str, split: str, tokenizer_dir: Path, cutoff: int, work: Path):
    """One dataset through llamafactory.data.loader.get_dataset (sft; eval sets in predict mode)."""
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.data.loader import get_dataset
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    keys = {"dataset": name} if split == "train" else {"eval_dataset": name}
    data_args = DataArguments(
        dataset_dir=str(dataset_dir), cutoff_len=cutoff, template="llama3", overwrite_cache=True, **keys
    )
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    model_args = ModelArguments(model_name_or_path=str(tokenizer_dir), cache_dir=str(work / "hf-cache"))
    mode = {"do_train": True} if split == "train" else {"do_predict": True, "predict_with_generate": True}
    training_args = Seq2SeqTrainingArguments(output_dir=str(work / "out"), report_to=[], **mode)
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", tokenizer=tokenizer)
    return tokenizer, module["train_dataset" if split == "train" else "eval_dataset"]


def check_loaded(dataset_dir: Path, tokenizer_dir: Path, cutoff: int, work: Path) -> dict[str, int]:
    """Load every file of the manifest; each row survives with prompt, assistant header and answer intact."""
    from mprtune.data.truncation import LengthGuard, LengthLimit

    manifest = json.loads((dataset_dir / "manifest.json").read_text())["files"]
    counter = LengthGuard([LengthLimit(cutoff, "llama3", str(tokenizer_dir), ("t",))])._counters[0]
    loaded = {}
    for file, entry in manifest.items():
        tokenizer, dataset = lf_load(dataset_dir, entry["dataset"], entry["split"], tokenizer_dir, cutoff, work)
        rows = read_rows(dataset_dir / file)
        assert len(dataset) == entry["rows"] == len(rows), file
        counts = counter([r["instruction"] for r in rows], [r["output"] for r in rows])
        for row, example, tokens in zip(rows, dataset, counts, strict=True):
            prompt = (
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
                + row["instruction"]
                + "<|eot_id|>"
                + ASSISTANT_HEADER
            )
            if entry["split"] == "train":
                assert tokenizer.decode(example["input_ids"]) == prompt + row["output"] + "<|eot_id|>", row["id"]
                assert len(example["input_ids"]) == tokens <= cutoff
            else:
                assert tokenizer.decode(example["input_ids"]) == prompt, row["id"]
                assert tokenizer.decode(example["labels"]) == row["output"] + "<|eot_id|>"
                assert len(example["input_ids"]) + len(example["labels"]) == tokens <= cutoff
        loaded[file] = len(dataset)
    return loaded


@pytest.mark.slow
def test_llamafactory_loads_every_bundled_sample(tmp_path, tiny_tokenizer_dir):
    from mprtune.config.render import dataset_info_json

    folder = tmp_path / "samples"
    folder.mkdir()
    for name in [*sample_files(), "manifest.json"]:
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    (folder / "dataset_info.json").write_text(dataset_info_json(load_matrix(ROOT / "mprtune.yaml", "tiny")))
    loaded = check_loaded(folder, tiny_tokenizer_dir, 256, tmp_path)
    assert loaded == {
        "jfleg_train.jsonl": 59,
        "jfleg_eval.jsonl": 20,
        "paws_train.jsonl": 40,
        "paws_eval.jsonl": 10,
        "qqp_train.jsonl": 44,
        "qqp_eval.jsonl": 8,
        "kilt_qa_train.jsonl": 36,
        "kilt_qa_eval.jsonl": 14,
        "wiki_desc_train.jsonl": 44,
        "wiki_desc_eval.jsonl": 7,
    }


@pytest.mark.slow
@pytest.mark.skipif(jfleg_dir() is None, reason="real JFLEG not available")
def test_llamafactory_loads_real_jfleg_after_the_guard(tmp_path, tiny_tokenizer_dir):
    """With the tiny tokenizer (~2 chars/token) some JFLEG rows exceed 256 tokens: the guard drops
    exactly those, and LLaMA-Factory then keeps the assistant header of every remaining row."""
    from mprtune.config.render import dataset_info_json

    raw = raw_matrix()
    for model in raw["models"].values():
        model["path"] = str(tiny_tokenizer_dir)
    matrix = matrix_in(tmp_path, raw)
    out = tmp_path / "jfleg"
    report = prepare_data(matrix, ["grammar"], str(jfleg_dir()), out)
    (out / "dataset_info.json").write_text(dataset_info_json(matrix))
    loaded = check_loaded(out, tiny_tokenizer_dir, 256, tmp_path)
    files = {f.file: f for f in report.files}
    for name, rows in loaded.items():
        assert (
            rows == files[name].rows
            and rows + files[name].dropped_overlong == {"jfleg_train.jsonl": 2500, "jfleg_eval.jsonl": 747}[name]
        )


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak RSS is read from /proc")
def test_synthetic_400k_qqp_prepare_is_fast_and_bounded(tmp_path):
    """400k-row GLUE-layout QQP train.tsv + 40k dev: under 60 s and bounded memory (subprocess)."""
    import random

    rng = random.Random(0)
    words = [
        "what",
        "how",
        "why",
        "is",
        "the",
        "best",
        "way",
        "to",
        "learn",
        "make",
        "good",
        "do",
        "I",
        "can",
        "you",
        "a",
        "of",
        "in",
        "for",
        "my",
        "on",
        "with",
        "get",
    ]
    folder = tmp_path / "src" / "qqp"
    folder.mkdir(parents=True)
    for name, start, n in (("train.tsv", 0, 400_000), ("dev.tsv", 400_000, 40_000)):
        with open(folder / name, "w", encoding="utf-8") as handle:
            handle.write("\t".join(QQP_HEADER) + "\n")
            for i in range(start, start + n):
                a, b = (" ".join(rng.choices(words, k=rng.randint(5, 18))).capitalize() + "?" for _ in "ab")
                handle.write(f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\t{int(rng.random() < 0.37)}\n")
    # Peak RSS from /proc/self/status VmHWM: getrusage's ru_maxrss survives fork+exec (it would
    # report pytest's own peak).
    code = (
        "import re, sys; from mprtune.cli import cli; "
        "cli(['prepare-data', *sys.argv[1:]], prog_name='mprtune', standalone_mode=False); "
        "print('PEAK_KB', re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "qqp_only",
            "--config",
            str(ROOT / "mprtune.yaml"),
            "--source",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
        check=False,
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stdout.rsplit("PEAK_KB", 1)[1]) / 1024
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"]
    assert manifest["qqp_train.jsonl"]["rows"] > 250_000
    print(f"400k QQP: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB, {manifest['qqp_train.jsonl']['rows']} rows")
    assert seconds < 60 and peak_mb < 400
