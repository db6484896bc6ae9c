"""A corpus of bad inputs (matrix, raw data, prepared data, CLI arguments, run folders) against the real CLI.

Every case runs one command on its own copy of the project, beside a finished run, and checks what
users care about:

- input errors exit 2 with one `Error: ...` line per problem (a click usage error may add its
  `Usage:`/`Try` lines), no traceback, and every line stays short (bad values are cut, never echoed
  whole); damaged run-folder files are one `Warning: <file>: ...` line each and the command goes on;
- nothing is written: the project copy, the raw sources and the runs dir are byte-identical after
  the command (the `train` lock file excepted), and so is the finished run folder;
- nothing is written outside the test's temporary folder (the repository is compared at the end).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "samples" / "raw"
A = "llama32_3b_grammar_lora"  # a finished run in every case's runs dir
B = "llama31_8b_grammar_lora"  # not trained: the variant broken run folders and `train` cases use
MAX_LINE = 400  # an error line quoting a 200 kB value must stay readable
HUGE = "x" * 200_000
LOCK = ".mprtune-train.lock"  # `train` takes its lock before reading the prepared data


@dataclass
class Env:
    tmp: Path
    root: Path  # the project copy (MPRTUNE_PROJECT_DIR)
    runs: Path  # MPRTUNE_RUNS_DIR, holding the finished run A
    src: Path  # a copy of the raw sample corpora (prepare-data --source)
    out: Path  # where an output option points; must stay empty

    def sub(self, arg: str) -> str:
        return arg.format(root=self.root, runs=self.runs, src=self.src, out=self.out, tmp=self.tmp)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: str  # substring of the problem line
    setup: Callable[[Env], None] | None = None
    code: int = 2  # 0: the problem is a warning and the command goes on
    problems: int = 1  # `Error:` lines (or `Warning:` lines when code == 0)
    allowed: tuple[str, ...] = field(default_factory=tuple)  # files the command may create in the runs dir


# --------------------------------------------------------------------------- setup helpers


def edit_matrix(old: str, new: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.root / "mprtune.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text, f"fixture edit no longer applies: {old!r}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return setup


def write_bytes(relative: str, data: bytes, base: str = "root") -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = getattr(env, base) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return setup


def replace_line(relative: str, number: int, data: bytes, base: str = "src") -> Callable[[Env], None]:
    """Line `number` (1-based) of a file replaced by `data`; number 0 appends a line."""

    def setup(env: Env) -> None:
        path = getattr(env, base) / relative
        lines = path.read_bytes().split(b"\n")
        if number == 0:
            lines.insert(len(lines) - 1 if lines[-1] == b"" else len(lines), data)
        else:
            lines[number - 1] = data
        path.write_bytes(b"\n".join(lines))

    return setup


def prepend(relative: str, data: bytes, base: str = "src") -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = getattr(env, base) / relative
        path.write_bytes(data + path.read_bytes())

    return setup


def remove(relative: str, base: str = "src") -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = getattr(env, base) / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return setup


def run_file(name: str, data: bytes | str, variant: str = B) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.runs / variant / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def status_file(**fields: object) -> Callable[[Env], None]:
    body = {"name": B, "kind": "train", "state": "running", **fields}
    return run_file("mprtune-status.json", json.dumps(body))


def both(*setups: Callable[[Env], None]) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        for step in setups:
            step(env)

    return setup


# --------------------------------------------------------------------------- the corpus

G = "{name: llama32_3b_grammar_lora, model: llama32_3b, task: grammar}"
RENDER = ("render", "--no-lf-check", "--out", "{out}")


def matrix(id: str, old: str, new: str, expect: str, problems: int = 1) -> Case:
    return Case(f"matrix-{id}", RENDER, expect, edit_matrix(old, new), problems=problems)


MATRIX = [
    matrix(
        "dataset-key-typo",
        "jfleg_train: {file: jfleg_train.jsonl}",
        "jfleg_train: {file: jfleg_train.jsonl, formating: sharegpt}",
        "datasets.jfleg_train.formating: unknown key; did you mean 'formatting'?",
    ),
    matrix(
        "dataset-tags-on-alpaca",
        "jfleg_train: {file: jfleg_train.jsonl}",
        "jfleg_train: {file: jfleg_train.jsonl, tags: {role_tag: role}}",
        "datasets.jfleg_train.tags: only sharegpt datasets have role tags",
    ),
    matrix(
        "dataset-import-missing-entry",
        "jfleg_train: {file: jfleg_train.jsonl}",
        "jfleg_train: {dataset_info: samples/dataset_info.json, entry: nope}",
        "datasets.jfleg_train.entry: data/samples/dataset_info.json has no entry 'nope'",
    ),
    Case(
        "matrix-foreign-dataset_info",
        RENDER,
        "not written by mprtune",
        write_bytes("out/data/dataset_info.json", b'{"theirs": {"hf_hub_url": "org/x"}}', base="tmp"),
    ),
    matrix(
        "400-digit-train_tokens",
        "train_tokens: 200000",
        "train_tokens: " + "9" * 400,
        "tasks.grammar.train_tokens: expected a number >= 1",
    ),
    matrix(
        "extra_args-list",
        "  lora_alpha: 32\n",
        "  lora_alpha: 32\n  extra_args: [1, 2]\n",
        "recipe.extra_args: expected a mapping, got [1, 2]",
    ),
    matrix("epochs-inf", "num_train_epochs: 3", "num_train_epochs: .inf", "recipe.num_train_epochs: expected a finite"),
    matrix("epochs-nan", "num_train_epochs: 3", "num_train_epochs: .nan", "recipe.num_train_epochs: expected a finite"),
    matrix(
        "epochs-zero", "num_train_epochs: 3", "num_train_epochs: 0", "recipe.num_train_epochs: expected a number > 0"
    ),
    matrix("lora_rank-1e30", "lora_rank: 16", "lora_rank: 1e30", "recipe.lora_rank: expected an integer, got 1e+30"),
    matrix(
        "lora_rank-5000-digits", "lora_rank: 16", "lora_rank: " + "1" * 5000, "integer with 5000 digits is too long"
    ),
    matrix("lora_rank-huge-string", "lora_rank: 16", f"lora_rank: '{HUGE}'", "recipe.lora_rank: expected an integer"),
    matrix("lora_rank-negative", "lora_rank: 16", "lora_rank: -8", "recipe.lora_rank: expected a number >= 1"),
    matrix("cutoff_len-zero", "cutoff_len: 256", "cutoff_len: 0", "tasks.grammar.cutoff_len: expected a number >= 1"),
    matrix("params-negative", "params: 3.21e9", "params: -5", "models.llama32_3b.params: expected a number > 0"),
    matrix("params-string", "params: 3.21e9", "params: big", "models.llama32_3b.params: expected a number"),
    matrix("max_new_tokens-negative", "max_new_tokens: 128", "max_new_tokens: -1", "predict.max_new_tokens"),
    matrix("latency_rows-negative", "latency_rows: 20", "latency_rows: -3", "predict.latency_rows"),
    matrix("seed-negative", "seed: 42", "seed: -1", "recipe.seed: expected a number >= 0"),
    matrix("save_steps-zero", "save_steps: 200 ", "save_steps: 0 ", "recipe.save_steps: expected a number >= 1"),
    matrix(
        "batch-zero",
        "per_device_train_batch_size: 4",
        "per_device_train_batch_size: 0",
        "recipe.per_device_train_batch_size",
    ),
    matrix(
        "learning_rate-5", "learning_rate: 5.0e-5", "learning_rate: 5", "recipe.learning_rate: expected a number > 0"
    ),
    matrix("dropout-1.5", "lora_dropout: 0.05", "lora_dropout: 1.5", "recipe.lora_dropout"),
    matrix("warmup-negative", "warmup_ratio: 0.03", "warmup_ratio: -0.1", "recipe.warmup_ratio"),
    matrix(
        "yes-is-not-a-number",
        "  num_train_epochs: 3\n",
        "  num_train_epochs: yes\n",
        "recipe.num_train_epochs: expected a number, got True",
    ),
    matrix(
        "extra_args-nested",
        "  lora_alpha: 32\n",
        "  lora_alpha: 32\n  extra_args: {a: [1, 2]}\n",
        "recipe.extra_args.a: expected a string, a finite number or a boolean",
    ),
    matrix(
        "extra_args-400-digits",
        "  lora_alpha: 32\n",
        "  lora_alpha: 32\n  extra_args: {x: " + "9" * 400 + "}\n",
        "recipe.extra_args.x: expected a string, a finite number or a boolean",
    ),
    matrix(
        "extra_args-inf",
        "  lora_alpha: 32\n",
        "  lora_alpha: 32\n  extra_args: {x: .inf}\n",
        "recipe.extra_args.x: expected a string, a finite number or a boolean, got inf",
    ),
    matrix(
        "extra_args-bad-key",
        "  lora_alpha: 32\n",
        "  lora_alpha: 32\n  extra_args: {'a b': 1}\n",
        "recipe.extra_args: argument names are LLaMA-Factory keys",
    ),
    matrix(
        "variant-name-300-chars",
        G,
        "{name: " + "a" * 300 + ", model: llama32_3b, task: grammar}",
        "unsafe name: use up to 100",
    ),
    matrix(
        "variant-name-space", G, "{name: 'a b', model: llama32_3b, task: grammar}", "variants.a b.name: unsafe name"
    ),
    matrix(
        "variant-name-slash", G, "{name: ../x, model: llama32_3b, task: grammar}", "variants.../x.name: unsafe name"
    ),
    matrix(
        "variant-unknown-model-huge",
        G,
        "{name: v, model: " + "m" * 5000 + ", task: grammar}",
        "variants.v.model: unknown model",
    ),
    matrix("variant-not-a-mapping", G, "just-a-string", "variants[0]: expected a mapping"),
    matrix(
        "duplicate-variant",
        "{name: llama31_8b_qqp_only_lora,",
        "{name: llama31_8b_paws_only_lora,",
        "duplicate variant name",
    ),
    matrix("data_dir-300-chars", "data_dir: data ", "data_dir: " + "d" * 300 + " ", "data_dir: expected a folder path"),
    matrix(
        "dataset-file-absolute",
        "{file: jfleg_train.jsonl}",
        "{file: /etc/passwd}",
        "datasets.jfleg_train.file: must be a relative path inside the data dir",
    ),
    matrix(
        "dataset-file-escapes",
        "{file: jfleg_train.jsonl}",
        "{file: ../../secrets.jsonl}",
        "datasets.jfleg_train.file: must be a relative path",
    ),
    matrix("task-train-empty", "train: [jfleg_train]", "train: []", "tasks.grammar.train: needs at least one dataset"),
    matrix("task-kind-unknown", "kind: grammar", "kind: spelling", "tasks.grammar.kind: expected one of"),
    matrix("gpus-400-digits", "gpus: [0, 1]", "gpus: [" + "9" * 400 + "]", "hardware.gpus: expected a list of GPU ids"),
    matrix("gpus-negative", "gpus: [0, 1]", "gpus: [-1]", "hardware.gpus: expected a list of GPU ids"),
    matrix("gpus-twice", "gpus: [0, 1]", "gpus: [0, 0]", "hardware.gpus: duplicate GPU id"),
    matrix("slurm-mem-list", "mem: 64G", "mem: [1]", "slurm.mem: expected a string"),
    matrix("slurm-cpus-zero", "  cpus_per_task: 8", "  cpus_per_task: 0", "slurm.cpus_per_task"),
    matrix("bf16-and-fp16", "  bf16: true\n", "  bf16: true\n  fp16: true\n", "bf16 and fp16 are both true"),
    matrix(
        "deepspeed-zero4",
        G,
        "{name: llama32_3b_grammar_lora, model: llama32_3b, task: grammar, deepspeed: zero4}",
        "deepspeed: expected one of zero2, zero3",
    ),
    matrix(
        "missing-model-path",
        "    path: meta-llama/Llama-3.1-8B-Instruct\n",
        "",
        "models.llama31_8b.path: missing required key",
    ),
    matrix("duplicate-key", "  llama31_8b:\n", "  llama32_3b:\n", "duplicate key 'llama32_3b'"),
    matrix("invalid-yaml", "hardware:\n  gpus: [0, 1]", "hardware:\n  gpus: [0, 1", "invalid YAML"),
    matrix("python-tag", "wandb:\n", "wandb: !!python/object/apply:os.system ['true']\nx:\n", "invalid YAML"),
    Case(
        "matrix-not-utf8",
        RENDER,
        "line 3: not UTF-8 text (byte offset",
        replace_line("mprtune.yaml", 3, b"# caf\xe9", base="root"),
    ),
    Case(
        "matrix-top-level-list",
        RENDER,
        "expected a mapping at the top level",
        write_bytes("mprtune.yaml", b"- 1\n- 2\n"),
    ),
    Case("matrix-empty", RENDER, "expected a mapping at the top level", write_bytes("mprtune.yaml", b"")),
    Case("matrix-nested-deeply", RENDER, "invalid YAML", write_bytes("mprtune.yaml", b"a: " + b"[" * 20000)),
    Case(
        "config-is-a-folder", ("render", "--no-lf-check", "--config", "{root}/data", "--out", "{out}"), "is a directory"
    ),
    Case(
        "config-missing", ("render", "--no-lf-check", "--config", "{tmp}/nope.yaml", "--out", "{out}"), "file not found"
    ),
    Case("profile-unknown-huge", ("plan", "--profile", "p" * 100_000), "--profile: unknown profile"),
]

PREPARE = ("prepare-data", "{task}", "--source", "{src}", "--out", "{out}")


def data(id: str, task: str, setup: Callable[[Env], None] | None, expect: str) -> Case:
    return Case(f"data-{id}", tuple(a.replace("{task}", task) for a in PREPARE), expect, setup)


DATA = [
    data(
        "jfleg-src-not-utf8",
        "grammar",
        replace_line("jfleg/test.src", 2, b"caf\xe9 au lait ."),
        "jfleg/test.src:2: not UTF-8 text (byte offset",
    ),
    data(
        "jfleg-ref-not-utf8",
        "grammar",
        replace_line("jfleg/test.ref2", 4, b"bad \xff\xfe byte"),
        "jfleg/test.ref2:4: not UTF-8 text (byte offset",
    ),
    data("jfleg-dev-not-utf8", "grammar", replace_line("jfleg/dev.src", 1, b"\x80"), "jfleg/dev.src:1: not UTF-8"),
    data(
        "jfleg-refs-unequal",
        "grammar",
        replace_line("jfleg/test.ref1", 0, b"one line too many"),
        "reference files of unequal length",
    ),
    data("jfleg-ref-missing", "grammar", remove("jfleg/test.ref3"), "jfleg/test.ref3: file not found"),
    data(
        "jfleg-blank-row-inside",
        "grammar",
        both(*(replace_line(f"jfleg/test.{n}", 3, b"") for n in ("src", "ref0", "ref1", "ref2", "ref3"))),
        "jfleg/test.src:3: empty text in field 'sentence'",
    ),
    data("jfleg-folder-missing", "grammar", remove("jfleg"), "jfleg: folder not found"),
    data(
        "paws-row-not-utf8",
        "paws_only",
        replace_line("paws/train.tsv", 0, b"99\tcaf\xe9\ty\t1"),
        "paws/train.tsv:31: not UTF-8 text (byte offset",
    ),
    data(
        "paws-header-not-utf8",
        "paws_only",
        replace_line("paws/test.tsv", 1, b"id\tsentence1\tsentence2\tl\xe9bel"),
        "paws/test.tsv:1: header not UTF-8",
    ),
    data(
        "paws-field-over-csv-limit",
        "paws_only",
        replace_line("paws/train.tsv", 0, b"99\t" + b"x" * 200_000 + b"\ty\t1"),
        "a field is longer than 131072 characters",
    ),
    data(
        "paws-missing-column",
        "paws_only",
        replace_line("paws/test.tsv", 1, b"id\tsentence1\tsentence2"),
        "paws/test.tsv:1: missing column 'label'",
    ),
    data(
        "paws-huge-header",
        "paws_only",
        replace_line("paws/test.tsv", 1, b"\t".join([b"c" * 1000] * 50)),
        "missing column 'id'",
    ),
    data(
        "paws-label-7", "paws_only", replace_line("paws/train.tsv", 0, b"99\ta\tb\t7"), "label must be 0 or 1, got '7'"
    ),
    data(
        "paws-label-200kB",
        "paws_only",
        replace_line("paws/train.tsv", 0, b"99\ta\tb\t" + b"7" * 100_000),
        "label must be 0 or 1, got '777",
    ),
    data(
        "paws-too-few-fields",
        "paws_only",
        replace_line("paws/train.tsv", 0, b"99\tonly two"),
        "expected 4 tab-separated fields, got 2",
    ),
    data("paws-empty-file", "paws_only", write_bytes("paws/test.tsv", b"", base="src"), "paws/test.tsv:1: empty file"),
    data(
        "paws-carriage-return", "paws_only", replace_line("paws/train.tsv", 0, b"99\ta\rb\tc\t1"), "a carriage return"
    ),
    data(
        "paws-empty-sentence",
        "paws_only",
        replace_line("paws/train.tsv", 0, b"99\t \tb\t1"),
        "empty text in field 'sentence1'",
    ),
    data("paws-file-missing", "paws_only", remove("paws/test.tsv"), "paws/test.tsv: file not found"),
    data(
        "qqp-not-utf8",
        "qqp_only",
        replace_line("qqp/quora_duplicate_questions.tsv", 0, b'10\t1\t2\t"q\xff"\t"r"\t1'),
        "not UTF-8 text (byte offset",
    ),
    data(
        "qqp-id-not-int",
        "qqp_only",
        replace_line("qqp/quora_duplicate_questions.tsv", 0, b"x" * 300 + b"\t1\t2\ta\tb\t1"),
        "id must be a non-negative integer in the Quora layout",
    ),
    data(
        "qqp-missing-column",
        "qqp_only",
        replace_line("qqp/quora_duplicate_questions.tsv", 1, b"id\tqid1"),
        "missing column 'qid2'",
    ),
    data(
        "kilt-not-utf8",
        "knowledge",
        replace_line("kilt/nq-dev-kilt.jsonl", 0, b'{"id": "x\xc3", "input": "q"}'),
        "kilt/nq-dev-kilt.jsonl:15: not UTF-8 text (byte offset",
    ),
    data(
        "kilt-nested-200000-deep",
        "knowledge",
        replace_line("kilt/nq-dev-kilt.jsonl", 0, b"[" * 200_000 + b"]" * 200_000),
        "invalid JSON: nested too deeply",
    ),
    data(
        "kilt-5000-digit-number",
        "knowledge",
        replace_line("kilt/nq-dev-kilt.jsonl", 0, b'{"id": ' + b"1" * 5000 + b"}"),
        "invalid JSON: a number with thousands of digits",
    ),
    data(
        "kilt-row-is-a-list",
        "knowledge",
        replace_line("kilt/nq-train-kilt.jsonl", 0, b"[1, 2]"),
        "expected a JSON object, got list",
    ),
    data("kilt-invalid-json", "knowledge", replace_line("kilt/nq-train-kilt.jsonl", 0, b'{"id": '), "invalid JSON"),
    data(
        "kilt-no-answer",
        "knowledge",
        replace_line("kilt/nq-train-kilt.jsonl", 0, b'{"id": "q1", "input": "who?", "output": [{"provenance": []}]}'),
        "no non-empty answer in 'output'",
    ),
    data(
        "kilt-output-not-list",
        "knowledge",
        replace_line(
            "kilt/nq-train-kilt.jsonl", 0, b'{"id": "q1", "input": "who?", "output": "' + b"a" * 100_000 + b'"}'
        ),
        "field 'output' must be a list",
    ),
    data(
        "wiki-not-utf8",
        "knowledge",
        replace_line("wiki.jsonl", 0, b'{"title": "A\xc3", "text": "x"}'),
        "wiki.jsonl:53: not UTF-8 text (byte offset",
    ),
    data(
        "wiki-no-title", "knowledge", replace_line("wiki.jsonl", 0, b'{"text": "A sentence."}'), "missing field 'title'"
    ),
    data(
        "wiki-text-wrong-type",
        "knowledge",
        replace_line("wiki.jsonl", 0, b'{"title": "T", "text": 5}'),
        "field 'text' must be a string",
    ),
    data("wiki-missing", "knowledge", remove("wiki.jsonl"), "wiki.jsonl: file not found"),
    Case(
        "data-source-not-a-folder",
        ("prepare-data", "grammar", "--source", "{root}/README.md", "--out", "{out}"),
        "must be `hf` or a folder",
    ),
    Case(
        "data-source-huge-name",
        ("prepare-data", "grammar", "--source", HUGE, "--out", "{out}"),
        "must be `hf` or a folder",
    ),
    Case(
        # A long path is cut at its front: the missing last component, what is wrong, stays in the line.
        "data-source-long-path-missing-last-component",
        ("prepare-data", "grammar", "--source", "{src}/" + "d" * 90 + "/jfleg_not_here", "--out", "{out}"),
        "/jfleg_not_here': must be `hf` or a folder",
        lambda env: (env.src / ("d" * 90)).mkdir(),
    ),
    Case("data-unknown-task", ("prepare-data", "t" * 5000, "--source", "{src}", "--out", "{out}"), "unknown task"),
    Case(
        "data-damaged-manifest",
        PREPARE[:1] + ("grammar",) + PREPARE[2:],
        "manifest is not valid JSON",
        write_bytes("out/manifest.json", b"{not json", base="tmp"),
    ),
]

# A damaged prepared dataset: the planner names file:line (plan, train --dry-run, train).
PREPARED = {
    "row-is-a-list": (b"[1, 2]", "jfleg_train.jsonl:60: expected a JSON object, got list"),
    "bad-json": (b'{"instruction": ', "jfleg_train.jsonl:60: not a JSON line"),
    "not-utf8": (b'{"instruction": "caf\xe9"}', "jfleg_train.jsonl:60: not UTF-8"),
    "nested-deeply": (b"[" * 200_000 + b"]" * 200_000, "jfleg_train.jsonl:60: not a JSON line"),
    "5000-digits": (b'{"n": ' + b"1" * 5000 + b"}", "jfleg_train.jsonl:60: not a JSON line"),
    "sharegpt-as-alpaca": (
        b'{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}',
        "jfleg_train.jsonl:60: no 'instruction' field (datasets.jfleg_train.columns.prompt); the row looks like",
    ),
    "no-output": (b'{"instruction": "Fix: a"}', "jfleg_train.jsonl:60: no 'output' field"),
}
COMMANDS = {
    "plan": ("plan", "--profile", "tiny", B),
    "dry-run": ("train", "--profile", "tiny", "--dry-run", B),
    "train": ("train", "--profile", "tiny", "--slots", "1", B),
}
PREPARED_CASES = [
    Case(
        f"prepared-{name}-{command}",
        COMMANDS[command],
        expect,
        replace_line("data/samples/jfleg_train.jsonl", 0, line, base="root"),
        allowed=(LOCK,) if command == "train" else (),
    )
    for name, (line, expect) in PREPARED.items()
    for command in COMMANDS
]

TINY = ("--profile", "tiny")
FILE_DIR = "{root}/README.md/x"  # under a regular file
ARGS = [
    Case("gpus-negative", ("plan", *TINY, "--gpus", "-1"), "--gpus: GPU ids are integers >= 0"),
    Case("gpus-twice", ("plan", *TINY, "--gpus", "0,0"), "--gpus: GPU id listed twice"),
    Case("gpus-empty", ("plan", *TINY, "--gpus", ""), "--gpus: expected comma-separated GPU ids"),
    Case("gpus-words", ("train", *TINY, "--gpus", "gpu0", B), "--gpus: GPU ids are integers"),
    Case("gpus-huge", ("plan", *TINY, "--gpus", "1," * 50_000), "--gpus: expected comma-separated GPU ids"),
    Case("gpus-not-on-this-machine", ("train", *TINY, "--gpus", "4095", B), "--gpus: "),
    Case("gpus-and-slots", ("train", *TINY, "--gpus", "0", "--slots", "2", B), "--gpus and --slots are exclusive"),
    Case("slots-zero", ("train", *TINY, "--slots", "0", B), "Invalid value for '--slots'"),
    Case("retries-negative", ("train", *TINY, "--retries", "-1", B), "Invalid value for '--retries'"),
    Case("backend-unknown", ("train", *TINY, "--backend", "k8s", B), "Invalid value for '--backend'"),
    Case(
        "slurm-bad-time",
        ("train", *TINY, "--backend", "slurm", "--time", "soon", "--dry-run", B),
        "--time: expected HH:MM:SS",
    ),
    Case(
        "slurm-unsafe-partition",
        ("train", *TINY, "--backend", "slurm", "--partition", "gpu;rm -rf /", "--dry-run", B),
        "--partition: unsafe value",
    ),
    Case(
        "slurm-sbatch-arg-not-an-option",
        ("train", *TINY, "--backend", "slurm", "--sbatch-arg", "x" * 1000, "--dry-run", B),
        "--sbatch-arg: expected one `--option[=value]`",
    ),
    Case("train-nothing-named", ("train", *TINY), "name the variants to run, or pass --all"),
    Case(
        "train-unknown-variant", ("train", *TINY, "llama32_3b_grammer_lora"), "did you mean 'llama32_3b_grammar_lora'"
    ),
    Case("train-huge-variant-name", ("train", *TINY, HUGE), "unknown variant"),
    Case("cancel-unknown-variant", ("cancel", *TINY, "nope"), "unknown variant 'nope'"),
    Case("compare-limit-zero", ("compare", *TINY, "--limit", "0", A), "Invalid value for '--limit'"),
    Case("compare-unfinished", ("compare", *TINY, B), "not finished training"),
    Case(
        "render-out-under-a-file", ("render", "--no-lf-check", "--out", FILE_DIR), "README.md is a file, not a folder"
    ),
    Case("collect-out-under-a-file", ("collect", *TINY, "--out", FILE_DIR), "README.md is a file, not a folder"),
    Case(
        "prepare-out-under-a-file",
        ("prepare-data", "grammar", "--source", "{src}", "--out", FILE_DIR),
        "README.md is a file, not a folder",
    ),
    Case(
        "compare-reports-under-a-file",
        ("compare", *TINY, "--reports-dir", FILE_DIR, A),
        "README.md is a file, not a folder",
    ),
    Case("export-out-under-a-file", ("export", *TINY, A, "--out", FILE_DIR), "README.md is a file, not a folder"),
    Case(
        "export-out-is-the-run-folder", ("export", *TINY, A, "--out", "{runs}/" + A), "inside (or holding) the runs dir"
    ),
    Case(
        "export-out-inside-the-run-folder",
        ("export", *TINY, A, "--out", "{runs}/" + A + "/merged"),
        "inside (or holding) the runs dir",
    ),
    Case("export-out-is-the-runs-dir", ("export", *TINY, A, "--out", "{runs}"), "inside (or holding) the runs dir"),
    Case("export-out-holds-the-runs-dir", ("export", *TINY, A, "--out", "{tmp}"), "inside (or holding) the runs dir"),
    Case("export-out-not-empty", ("export", *TINY, A, "--out", "{root}/data"), "not an earlier `mprtune export`"),
    Case("export-unfinished", ("export", *TINY, B, "--out", "{out}"), "has not finished training"),
    Case("tiny-model-over-a-finished-run", ("tiny-model", "{runs}/" + A), "was not created by mprtune"),
    Case("tiny-model-over-the-project", ("tiny-model", "{root}"), "was not created by mprtune"),
    Case("tiny-model-over-a-file", ("tiny-model", "{root}/README.md"), "README.md' is a file"),
    Case("tiny-model-under-a-file", ("tiny-model", FILE_DIR), "README.md is a file, not a folder"),
    Case(
        "score-unknown-task",
        (
            "score",
            "--task",
            "t" * 10_000,
            "--predictions",
            "{root}/README.md",
            "--source",
            "{root}/README.md",
            "--references",
            "{root}/README.md",
        ),
        "--task: unknown task",
    ),
    Case(
        "score-not-utf8",
        (
            "score",
            "--task",
            "grammar",
            "--predictions",
            "{root}/bad.txt",
            "--source",
            "{root}/README.md",
            "--references",
            "{root}/README.md",
        ),
        "bad.txt:2: not UTF-8",
        write_bytes("bad.txt", b"fine\ncaf\xe9\n"),
    ),
    Case(
        "score-unaligned",
        (
            "score",
            "--task",
            "grammar",
            "--predictions",
            "{root}/one.txt",
            "--source",
            "{root}/README.md",
            "--references",
            "{root}/README.md",
        ),
        "files must be aligned",
        write_bytes("one.txt", b"one line\ntwo lines\n"),
    ),
]
for command in ("plan", "status", "collect", "cancel"):
    ARGS.append(
        Case(
            f"{command}-runs-dir-under-a-file",
            (command, *TINY, "--runs-dir", "{root}/README.md/runs") + (("--all",) if command == "cancel" else ()),
            "README.md is a file, not a folder",
        )
    )
ARGS += [
    Case(
        "train-runs-dir-under-a-file",
        ("train", *TINY, "--runs-dir", "{root}/README.md/runs", B),
        "README.md is a file, not a folder",
    ),
    Case("train-runs-dir-is-a-file", ("train", *TINY, "--runs-dir", "{root}/README.md", B), "README.md' is a file"),
    Case(
        "train-runs-dir-name-too-long", ("train", *TINY, "--runs-dir", "{tmp}/" + "r" * 300, B), "longer than 255 bytes"
    ),
    Case(
        "train-runs-dir-long-path-with-a-too-long-component",
        ("train", *TINY, "--runs-dir", "{tmp}/" + "p" * 90 + "/" + "q" * 300 + "/runs_here", B),
        "q/runs_here': a path component is longer than 255 bytes (qqq",  # the cut keeps the path's end
    ),
]
ARGS = [Case(f"arg-{c.id}", c.argv, c.expect, c.setup, c.code, c.problems, c.allowed) for c in ARGS]

STATUS = ("status", *TINY)
RUN_FOLDERS = [
    Case(
        "status-list",
        STATUS,
        "damaged status file ignored (expected an object, got list)",
        run_file("mprtune-status.json", "[]"),
        code=0,
    ),
    Case(
        "status-empty-object", STATUS, "'name' missing or not a string", run_file("mprtune-status.json", "{}"), code=0
    ),
    Case("status-attempt-abc", STATUS, "'attempt' is not an integer", status_file(attempt="abc"), code=0),
    Case("status-job-id-number", STATUS, "'job_id' is not a string", status_file(job_id=123), code=0),
    Case(
        "status-nan-time",
        STATUS,
        "'started_at' is not a finite number",
        run_file("mprtune-status.json", '{"name": "x", "kind": "train", "started_at": NaN}'),
        code=0,
    ),
    Case("status-windows-wrong", STATUS, "'windows' is not a list", status_file(windows=[[1]]), code=0),
    Case(
        "status-truncated",
        STATUS,
        "damaged status file ignored (JSONDecodeError)",
        run_file("mprtune-status.json", '{"name": "x", "ki'),
        code=0,
    ),
    Case(
        "status-not-utf8",
        STATUS,
        "damaged status file ignored (UnicodeDecodeError)",
        run_file("mprtune-status.json", b'{"name": "\xff"}'),
        code=0,
    ),
    Case(
        "status-nested-deeply",
        STATUS,
        "damaged status file ignored (RecursionError)",
        run_file("mprtune-status.json", "[" * 200_000 + "]" * 200_000),
        code=0,
    ),
    Case(
        "status-5000-digits",
        STATUS,
        "damaged status file ignored (ValueError)",
        run_file("mprtune-status.json", '{"attempt": ' + "1" * 5000 + "}"),
        code=0,
    ),
    Case(
        "status-in-plan",
        ("plan", *TINY, B),
        "damaged status file ignored",
        run_file("mprtune-status.json", "[]"),
        code=0,
    ),
    Case(
        "status-in-collect",
        ("collect", *TINY, "--out", "{tmp}/collected"),
        "damaged status file ignored",
        run_file("mprtune-status.json", "[]"),
        code=0,
    ),
    Case(
        "status-in-cancel",
        ("cancel", *TINY, "--all"),
        "damaged status file ignored",
        run_file("mprtune-status.json", "[]"),
        code=0,
    ),
    Case(
        "status-in-train",
        ("train", *TINY, "--dry-run", B),
        "damaged status file ignored",
        run_file("mprtune-status.json", "[]"),
        code=0,
    ),
    # A finished run's status file is read too: a damaged one is named even though the run is done.
    Case(
        "status-finished-truncated",
        STATUS,
        "damaged status file ignored (JSONDecodeError)",
        run_file("mprtune-status.json", '{"name": "x", "ki', variant=A),
        code=0,
    ),
    Case(
        "status-finished-in-collect",
        ("collect", *TINY, "--out", "{tmp}/collected"),
        "damaged status file ignored (expected an object, got list)",
        run_file("mprtune-status.json", "[]", variant=A),
        code=0,
    ),
    Case(
        "status-finished-wrong-type-in-train",
        ("train", *TINY, "--dry-run", A),
        "'attempt' is not an integer",
        run_file("mprtune-status.json", json.dumps({"name": A, "kind": "train", "attempt": "abc"}), variant=A),
        code=0,
    ),
    Case("plan-gpus-not-on-this-machine", ("plan", *TINY, "--gpus", "4095"), "`train` will refuse", code=0),
    Case(
        "train_results-truncated-status",
        STATUS,
        "train_results.json: damaged (JSONDecodeError)",
        run_file("train_results.json", '{"train_runt', variant=A),
        code=0,
    ),
    Case(
        "train_results-truncated-collect",
        ("collect", *TINY, "--out", "{tmp}/collected"),
        "train_results.json: damaged (JSONDecodeError)",
        run_file("train_results.json", '{"train_runt', variant=A),
        code=0,
    ),
    Case(
        "train_results-truncated-train",
        ("train", *TINY, A),
        "train_results.json: damaged (JSONDecodeError)",
        run_file("train_results.json", '{"train_runt', variant=A),
        code=0,
        allowed=(LOCK,),
    ),
    Case(
        "train_results-a-list",
        STATUS,
        "train_results.json: damaged (expected a JSON object, got list)",
        run_file("train_results.json", "[]", variant=A),
        code=0,
    ),
    Case(
        "trainer_log-not-utf8",
        STATUS,
        "trainer_log.jsonl:1: skipped 1 damaged line(s)",
        run_file("trainer_log.jsonl", b'{"loss": \xff}\n{"current_steps": 1, "loss": 2.0}\n'),
        code=0,
    ),
    Case(
        "trainer_log-nested-deeply",
        STATUS,
        "trainer_log.jsonl:1: skipped 1 damaged line(s)",
        run_file("trainer_log.jsonl", "[" * 200_000 + "]" * 200_000 + "\n{}\n"),
        code=0,
    ),
    Case(
        "trainer_log-lists",
        ("collect", *TINY, "--out", "{tmp}/collected"),
        "skipped 2 damaged line(s)",
        run_file("trainer_log.jsonl", "[1]\n2\n{}\n"),
        code=0,
    ),
    Case(
        "runs-dir-env-is-a-file",
        STATUS,
        "README.md is a file, not a folder",
        lambda env: os.environ.__setitem__("MPRTUNE_RUNS_DIR", str(env.root / "README.md")),
    ),
]
RUN_FOLDERS = [Case(f"run-{c.id}", c.argv, c.expect, c.setup, c.code, c.problems, c.allowed) for c in RUN_FOLDERS]

CASES = MATRIX + DATA + PREPARED_CASES + ARGS + RUN_FOLDERS


# --------------------------------------------------------------------------- the checks


def tree_digest(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def finished_run(folder: Path) -> None:
    """What LLaMA-Factory leaves after a finished LoRA run (small): adapter, results, a checkpoint."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    adapter = len(header).to_bytes(8, "little") + header + b"\0" * 4
    checkpoint = folder / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    for where in (folder, checkpoint):
        (where / "adapter_model.safetensors").write_bytes(adapter)
        (where / "adapter_config.json").write_text('{"r": 16}')
    (checkpoint / "trainer_state.json").write_text('{"global_step": 4}')
    for name in ("optimizer.pt", "scheduler.pt"):
        with zipfile.ZipFile(checkpoint / name, "w") as archive:
            archive.writestr("data.pkl", b"x")
    (folder / "train_results.json").write_text('{"train_runtime": 1.5, "train_samples_per_second": 8.0}')
    (folder / "trainer_log.jsonl").write_text(
        "".join(json.dumps({"current_steps": s, "total_steps": 4, "loss": 3.0 - s / 4}) + "\n" for s in range(1, 5))
    )
    (folder / "mprtune-status.json").write_text(json.dumps({"name": A, "kind": "train", "state": "done"}))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Project copy, raw sources and a runs dir with one finished run, built once and copied per case."""
    base = tmp_path_factory.mktemp("bad-inputs")
    root = base / "project"
    root.mkdir()
    shutil.copy(ROOT / "mprtune.yaml", root / "mprtune.yaml")
    shutil.copytree(ROOT / "data" / "samples", root / "data" / "samples", ignore=shutil.ignore_patterns("raw"))
    shutil.copytree(ROOT / "llamafactory_configs", root / "llamafactory_configs")
    shutil.copy(ROOT / "data" / "dataset_info.json", root / "data" / "dataset_info.json")
    (root / "README.md").write_text("a regular file\n")
    shutil.copytree(RAW, base / "src")
    finished_run(base / "runs" / A)
    return base


@pytest.fixture(scope="module", autouse=True)
def repository_untouched() -> object:
    """Nothing outside the tests' temporary folders is written (sizes and mtimes of the repository)."""

    def snapshot() -> dict[str, tuple[int, int]]:
        skip = {".git", ".pytest_cache", "__pycache__", ".ruff_cache", ".mypy_cache"}
        return {
            p.relative_to(ROOT).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in ROOT.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        }

    before = snapshot()
    yield
    assert snapshot() == before, "a command wrote into the repository"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    env = Env(tmp_path, tmp_path / "project", tmp_path / "runs", tmp_path / "src", tmp_path / "out")
    monkeypatch.setenv("MPRTUNE_PROJECT_DIR", str(env.root))
    monkeypatch.setenv("MPRTUNE_RUNS_DIR", str(env.runs))
    if case.setup:
        case.setup(env)
    watched = {name: tree_digest(getattr(env, name)) for name in ("root", "src", "runs", "out")}
    finished = tree_digest(env.runs / A)

    result = CliRunner().invoke(cli, [env.sub(a) for a in case.argv])

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == case.code, lines[-5:]
    assert "Traceback" not in result.output
    kind = "Error: " if case.code else "Warning: "
    problems = [line for line in lines if line.startswith(kind)]
    assert all(len(line) <= MAX_LINE for line in problems), max(problems, key=len)[:300]
    assert len(problems) == case.problems, lines[-5:]
    assert any(case.expect in line for line in problems), (case.expect, problems)
    if case.code:  # nothing but the error (and click's usage hint for a usage error)
        assert all(line.startswith(("Error: ", "Usage: ", "Try '")) for line in lines), lines
    after = {name: tree_digest(getattr(env, name)) for name in ("root", "src", "runs", "out")}
    after["runs"] = {k: v for k, v in after["runs"].items() if k not in case.allowed}
    assert after == watched, "files were written or changed"
    assert tree_digest(env.runs / A) == finished, "the finished run changed"


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 100, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES)


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    "task,files",
    [
        ("grammar", ["jfleg/test.src", "jfleg/test.ref0", "jfleg/dev.src"]),
        ("paws_only", ["paws/train.tsv", "paws/test.tsv"]),
        ("qqp_only", ["qqp/quora_duplicate_questions.tsv"]),
        ("knowledge", ["kilt/nq-dev-kilt.jsonl", "kilt/nq-train-kilt.jsonl", "wiki.jsonl"]),
    ],
)
def test_a_bom_is_dropped_not_an_error(
    task: str, files: list[str], template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What some editors write at the start of a file: no `missing column 'id'`, no U+FEFF in a row."""
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("MPRTUNE_PROJECT_DIR", str(tmp_path / "project"))
    for name in files:
        prepend(name, BOM)(Env(tmp_path, tmp_path / "project", tmp_path / "runs", tmp_path / "src", tmp_path / "out"))
    matrix_path = tmp_path / "project" / "mprtune.yaml"
    matrix_path.write_bytes(BOM + matrix_path.read_bytes())
    result = CliRunner().invoke(
        cli, ["prepare-data", task, "--source", str(tmp_path / "src"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    written = [p for p in (tmp_path / "out").glob("*.jsonl")]
    assert written and not any("\ufeff" in p.read_text(encoding="utf-8") for p in written)
