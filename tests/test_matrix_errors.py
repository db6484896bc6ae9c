"""A corpus of broken matrices: each gives exit code 2, one line per problem, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli

ROOT = Path(__file__).resolve().parents[1]
GOOD = (ROOT / "mprtune.yaml").read_text()
G = "{name: llama32_3b_grammar_lora, model: llama32_3b, task: grammar}"

# (what is broken, edit of the good matrix, expected problem lines (substrings), in order)
BROKEN = [
    (
        "wrong type",
        (G, "{name: llama32_3b_grammar_lora, model: llama32_3b, task: grammar, lora_rank: sixteen}"),
        ["variants.llama32_3b_grammar_lora.lora_rank: expected an integer, got 'sixteen'"],
    ),
    (
        "unknown recipe key",
        ("  lora_alpha: 32\n", "  lora_alpha: 32\n  lora_alhpa: 32\n"),
        ["recipe.lora_alhpa: unknown key"],
    ),
    ("unknown top-level key", ("hardware:\n", "hardwre: {}\nhardware:\n"), ["hardwre: unknown key"]),
    (
        "unknown model reference",
        (G, "{name: llama32_3b_grammar_lora, model: llama33_3b, task: grammar}"),
        ["variants.llama32_3b_grammar_lora.model: unknown model 'llama33_3b'"],
    ),
    (
        "unknown task reference",
        (G, "{name: llama32_3b_grammar_lora, model: llama32_3b, task: grammer}"),
        ["variants.llama32_3b_grammar_lora.task: unknown task 'grammer'"],
    ),
    (
        "duplicate variant name",
        ("{name: llama31_8b_qqp_only_lora,", "{name: llama31_8b_paws_only_lora,"),
        ["variants.llama31_8b_paws_only_lora.name: duplicate variant name"],
    ),
    (
        "space in a name",
        (G, "{name: 'llama32 3b grammar', model: llama32_3b, task: grammar}"),
        ["variants.llama32 3b grammar.name: unsafe name"],
    ),
    ("slash in a name", (G, "{name: a/b, model: llama32_3b, task: grammar}"), ["variants.a/b.name: unsafe name"]),
    ("quote in a name", (G, '{name: "it\'s", model: llama32_3b, task: grammar}'), ["variants.it's.name: unsafe name"]),
    (
        "unknown dataset",
        ("train: [jfleg_train]", "train: [jfleg_trian]"),
        ["tasks.grammar.train: unknown dataset 'jfleg_trian'"],
    ),
    ("bad task kind", ("kind: grammar", "kind: spelling"), ["tasks.grammar.kind: expected one of"]),
    (
        "yes is not a number",
        ("  num_train_epochs: 3\n", "  num_train_epochs: yes\n"),
        ["recipe.num_train_epochs: expected a number, got True"],
    ),
    ("bad gpu ids", ("gpus: [0, 1]", "gpus: [0, gpu1]"), ["hardware.gpus: expected a list of GPU ids"]),
    (
        "missing model path",
        ("    path: meta-llama/Llama-3.1-8B-Instruct\n", ""),
        ["models.llama31_8b.path: missing required key"],
    ),
    ("duplicate mapping key", ("  llama31_8b:\n", "  llama32_3b:\n"), ["duplicate key 'llama32_3b'"]),
    (
        "bad deepspeed stage",
        (G, "{name: llama32_3b_grammar_lora, model: llama32_3b, task: grammar, deepspeed: zero4}"),
        ["variants.llama32_3b_grammar_lora.deepspeed: expected one of zero2, zero3"],
    ),
    (
        "learning rate out of range",
        ("learning_rate: 5.0e-5", "learning_rate: 5"),
        ["recipe.learning_rate: expected a number > 0 and <= 1, got 5"],
    ),
    ("invalid YAML", ("hardware:\n  gpus: [0, 1]", "hardware:\n  gpus: [0, 1"), ["invalid YAML"]),
    ("unknown profile key", ("  demo:", "  demo:\n    tokens: {}"), ["profiles.demo.tokens: a profile may set only"]),
    (
        "zero gpus",
        (G, "{name: llama32_3b_grammar_lora, model: llama32_3b, task: grammar, gpus: 0}"),
        ["variants.llama32_3b_grammar_lora.gpus: expected a number >= 1 and <= 4096, got 0"],
    ),
    (
        "bad sweep value",
        (
            "\nprofiles:",
            "\nsweeps:\n  s: {variant: llama32_3b_grammar_lora, axes: {lora_rank: [8, eight]}}\n\nprofiles:",
        ),
        ["sweeps.s.axes.lora_rank[1]: expected an integer, got 'eight'"],
    ),
]


@pytest.mark.parametrize("what,edit,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_matrix_exits_2_with_one_line_per_problem(
    tmp_path: Path, what: str, edit: tuple[str, str], expected: list[str]
) -> None:
    assert edit[0] in GOOD, f"fixture edit for {what!r} no longer applies"
    (tmp_path / "mprtune.yaml").write_text(GOOD.replace(edit[0], edit[1], 1))
    result = CliRunner().invoke(
        cli, ["render", "--no-lf-check", "--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line]
    assert all(line.startswith("Error: ") for line in lines), lines
    for want in expected:
        assert any(want in line for line in lines), (want, lines)
    assert not (tmp_path / "out").exists(), "nothing is written when the matrix is invalid"


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    broken = GOOD.replace("lora_rank: 16", "lora_rank: sixteen").replace("train: [jfleg_train]", "train: [nope]")
    broken = broken.replace(G, "{name: x y, model: m, task: t}")
    (tmp_path / "mprtune.yaml").write_text(broken)
    result = CliRunner().invoke(cli, ["render", "--no-lf-check", "--config", str(tmp_path / "mprtune.yaml")])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    for want in (
        "recipe.lora_rank: expected an integer",
        "tasks.grammar.train: unknown dataset 'nope'",
        "variants.x y.name: unsafe name",
        "variants.x y.model: unknown model 'm'",
        "variants.x y.task: unknown task 't'",
    ):
        assert sum(want in line for line in lines) == 1, (want, lines)
    assert all(line.startswith(f"Error: {tmp_path / 'mprtune.yaml'}: ") for line in lines)


def test_missing_matrix_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "file not found" in result.output


def test_unknown_profile(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "render",
            "--no-lf-check",
            "--config",
            str(ROOT / "mprtune.yaml"),
            "--profile",
            "prod",
            "--out",
            str(tmp_path),
        ],
    )
    assert (
        result.exit_code == 2
        and "--profile: unknown profile 'prod' (known: reference, demo, examples, tiny)" in result.output
    )


def test_every_shipped_profile_validates() -> None:
    from mprtune.config.matrix import load_matrix

    for profile in ("reference", "tiny"):
        matrix = load_matrix(ROOT / "mprtune.yaml", profile)
        assert len(matrix.variants) == 10
