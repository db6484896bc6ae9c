"""Sweeps: expansion and names, validation, the plan's grid, the report across a sweep, and a real 2x2 sweep."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import report_fixture
import yaml
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.config.matrix import parse_matrix
from mprtune.config.sweeps import MAX_NAME, number_token, variant_name
from mprtune.config.yamlfile import read_yaml
from mprtune.errors import ConfigError, MprtuneError
from mprtune.evaluate.report import render_report
from mprtune.evaluate.schema import validate_results
from mprtune.launch.env import job_env

ROOT = Path(__file__).resolve().parents[1]
BASE = "llama32_3b_grammar_lora"
LR_RANK = {
    "variant": BASE,
    "axes": {"lora_rank": [8, 16]},
    "zip": [{"learning_rate": [1.0e-4, 2.0e-4], "warmup_ratio": [0.03, 0.1]}],
}


def matrix_with(sweeps: dict[str, Any], profile: str = "reference", edit: Any = None) -> Any:
    raw = read_yaml(ROOT / "mprtune.yaml")
    raw["sweeps"] = copy.deepcopy(sweeps)
    if edit:
        edit(raw)
    return parse_matrix(raw, ROOT / "mprtune.yaml", profile)


def problems(sweeps: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        matrix_with(sweeps)
    return info.value.problems


# --- expansion and names --------------------------------------------------------------------------


def test_axes_are_a_cartesian_product_and_zipped_keys_move_together() -> None:
    matrix = matrix_with({"lr_rank": {**LR_RANK, "max_steps": 100}})
    sweep = matrix.sweeps["lr_rank"]
    assert sweep.axes == (("lora_rank",), ("learning_rate", "warmup_ratio"))
    assert list(sweep.variants) == [
        f"{BASE}__lr1e-4_r8_wu0.03",
        f"{BASE}__lr2e-4_r8_wu0.1",
        f"{BASE}__lr1e-4_r16_wu0.03",
        f"{BASE}__lr2e-4_r16_wu0.1",
    ]
    assert list(matrix.variants)[-4:] == list(sweep.variants), "sweep variants are ordinary matrix variants"
    variant = matrix.variants[f"{BASE}__lr2e-4_r16_wu0.1"]
    assert (variant.recipe["lora_rank"], variant.recipe["learning_rate"], variant.recipe["warmup_ratio"]) == (
        16,
        2.0e-4,
        0.1,
    )
    assert variant.recipe["max_steps"] == 100 and variant.recipe["lora_alpha"] == 32, "fixed keys and the recipe"
    assert variant.task.name == "grammar" and variant.model.name == "llama32_3b"
    assert variant.sweep.sweep == "lr_rank"
    assert variant.sweep.as_dict() == {"lora_rank": 16, "learning_rate": 2.0e-4, "warmup_ratio": 0.1}
    assert matrix.variants[BASE].sweep is None


def test_adding_a_value_to_an_axis_keeps_every_existing_name() -> None:
    before = matrix_with({"lr_rank": LR_RANK})
    grown = copy.deepcopy(LR_RANK)
    grown["axes"]["lora_rank"].append(32)
    grown["zip"][0]["learning_rate"].insert(0, 5.0e-5)
    grown["zip"][0]["warmup_ratio"].insert(0, 0.0)
    after = matrix_with({"lr_rank": grown})
    old, new = set(before.sweeps["lr_rank"].variants), set(after.sweeps["lr_rank"].variants)
    assert old < new and len(new) == 9
    for name in old:  # same name, same recipe: the finished run is found and skipped
        assert after.variants[name].recipe == before.variants[name].recipe
    reordered = {"variant": BASE, "zip": LR_RANK["zip"], "axes": LR_RANK["axes"]}  # axis order in YAML
    assert set(matrix_with({"lr_rank": reordered}).sweeps["lr_rank"].variants) == old


def test_names_are_filesystem_safe_and_long_ones_end_in_a_hash() -> None:
    assert [number_token(v) for v in (1e-4, 0.03, 2.5e-5, 16, 3.0, 1234.5)] == [
        "1e-4",
        "0.03",
        "2.5e-5",
        "16",
        "3",
        "1234.5",
    ]
    axes = {"lora_target": ["q_proj,v_proj", "all"], "packing": [True, False], "extra_args.neftune_noise_alpha": [5]}
    short = matrix_with({"t": {"model": "llama31_8b", "task": "grammar", "prefix": "t", "axes": axes}})
    assert list(short.sweeps["t"].variants) == [  # tokens sorted by key: extra_args.*, lora_target, packing
        "t__neftune_noise_alpha5_target-q_proj-v_proj_packing",
        "t__neftune_noise_alpha5_target-q_proj-v_proj_no-packing",
        "t__neftune_noise_alpha5_target-all_packing",
        "t__neftune_noise_alpha5_target-all_no-packing",
    ]
    variant = short.variants["t__neftune_noise_alpha5_target-all_packing"]
    assert variant.recipe["extra_args"]["neftune_noise_alpha"] == 5 and variant.recipe["packing"] is True
    long = matrix_with({"targets": {"model": "llama31_8b", "task": "grammar", "axes": axes}}).sweeps["targets"]
    assert len(set(long.variants)) == 4 and all(len(n) == MAX_NAME for n in long.variants)
    assert all(n.startswith("llama31_8b_grammar_targets__neftune_noise_alpha5_") for n in long.variants)
    first = variant_name("x" * 60, {"learning_rate": 1e-4})
    assert len(first) == MAX_NAME and first != variant_name("x" * 60, {"learning_rate": 2e-4})
    assert first == variant_name("x" * 60, {"learning_rate": 1e-4}), "stable across runs"


def test_sweep_variants_are_grouped_in_wandb_by_sweep(tmp_path: Path) -> None:
    matrix = matrix_with({"lr_rank": LR_RANK})
    env = job_env(matrix, matrix.variants[f"{BASE}__lr1e-4_r8_wu0.03"], tmp_path)
    assert env["WANDB_RUN_GROUP"] == "lr_rank" and env["WANDB_NAME"] == f"{BASE}__lr1e-4_r8_wu0.03"
    assert job_env(matrix, matrix.variants[BASE], tmp_path)["WANDB_RUN_GROUP"] == "grammar"


def test_a_profile_may_override_a_sweep() -> None:
    def shrink(raw: dict) -> None:
        raw["profiles"]["tiny"]["sweeps"] = {"lr_rank": {"axes": {"lora_rank": [4]}}}

    tiny = matrix_with({"lr_rank": LR_RANK}, "tiny", shrink)
    assert [v.split("__")[1] for v in tiny.sweeps["lr_rank"].variants] == ["lr1e-4_r4_wu0.03", "lr2e-4_r4_wu0.1"]
    assert tiny.variants[tiny.sweeps["lr_rank"].variants[0]].recipe["max_steps"] == 12, "the profile's recipe"


def test_every_problem_of_a_sweep_is_reported_with_its_key_path() -> None:
    found = problems(
        {
            "lr_rank": {
                "variant": BASE,
                "axes": {"learning_rate": [1e-4, 2e-4, -1, 1e-4], "lora_rnk": [8]},
                "zip": [{"lora_rank": [8, 16], "lora_alpha": [16]}],
                "deepspeed": "zero9",
            },
            "no_base": {"variant": "llama32_3b_grammar_lor", "axes": {"seed": [1, 2]}},
            "no_axes": {"model": "llama31_8b", "task": "grammer"},
            "twice": {"variant": BASE, "axes": {"seed": [1]}, "zip": [{"seed": [2]}], "lora_rank": 4, "prefix": "a b"},
        }
    )
    expected = [
        "sweeps.lr_rank.axes.learning_rate[2]: expected a number > 0 and <= 1, got -1",
        "sweeps.lr_rank.axes.learning_rate[3]: same value as [0]",
        "sweeps.lr_rank.axes.lora_rnk: not a recipe key; did you mean 'lora_rank'",
        "sweeps.lr_rank.zip[0]: zipped keys need lists of the same length, got lora_rank: 2, lora_alpha: 1",
        "sweeps.lr_rank.deepspeed: expected one of zero2, zero3",
        "sweeps.no_base.variant: unknown variant 'llama32_3b_grammar_lor'; did you mean",
        "sweeps.no_axes: a sweep needs at least one axis",
        "sweeps.no_axes.task: unknown task 'grammer'; did you mean 'grammar'?",
        "sweeps.twice.zip[0].seed: seed is already swept at sweeps.twice.axes.seed",
        "sweeps.twice.prefix: unsafe name",
    ]
    for want in expected:
        assert sum(line.startswith(want) for line in found) == 1, (want, found)
    assert len(found) == len(expected), found


def test_a_grid_point_may_not_take_a_hand_written_variants_name() -> None:
    found = problems({"a": LR_RANK, "b": LR_RANK})
    assert len(found) == 4 and all(
        line.startswith("sweeps.b[") and "already taken by sweeps.a[" in line for line in found
    ), found


def test_a_broken_sweep_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    text = (
        (ROOT / "mprtune.yaml")
        .read_text()
        .replace(
            "\nprofiles:",
            "\nsweeps:\n  s:\n    variant: llama32_3b_grammar_lora\n"
            "    axes: {learning_rate: [1.0e-4, 5]}\n\nprofiles:",
            1,
        )
    )
    (tmp_path / "mprtune.yaml").write_text(text)
    result = CliRunner().invoke(
        cli, ["plan", "--config", str(tmp_path / "mprtune.yaml"), "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == (
        f"Error: {tmp_path / 'mprtune.yaml'}: sweeps.s.axes.learning_rate[1]: expected a number > 0 and <= 1, got 5"
    )


# --- plan -----------------------------------------------------------------------------------------


def sweep_matrix(tmp_path: Path, values: str = "[8, 16]") -> Path:
    text = (
        (ROOT / "mprtune.yaml")
        .read_text()
        .replace(
            "\nprofiles:",
            "\nsweeps:\n  lr_rank:\n    variant: llama32_3b_grammar_lora\n"
            f"    axes: {{lora_rank: {values}, learning_rate: [1.0e-4, 3.0e-4]}}\n\nprofiles:",
            1,
        )
    )
    (tmp_path / "mprtune.yaml").write_text(text)
    return tmp_path / "mprtune.yaml"


def test_plan_shows_the_expanded_grid_before_anything_runs(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["plan", "--config", str(sweep_matrix(tmp_path)), "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("sweep lr_rank: 4 variants")
    assert lines[start + 1].split() == ["variant", "lora_rank", "learning_rate", "gpus", "action"]
    assert lines[start + 2].split() == [f"{BASE}__lr1e-4_r8", "8", "1e-4", "1", "start"]
    assert lines[start + 5].split() == [f"{BASE}__lr3e-4_r16", "16", "3e-4", "1", "start"]
    assert f"WANDB_RUN_GROUP=lr_rank WANDB_RUN_ID={BASE}__lr3e-4_r16-" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "plan launches nothing"


# --- the report across a sweep ---------------------------------------------------------------------


def _stat(value: float, half: float) -> dict[str, Any]:
    return {"value": value, "ci_low": value - half, "ci_high": value + half, "n": 747}


def sweep_results(gleu: list[tuple[float, float]]) -> dict[str, Any]:
    """The report fixture plus four grid points of a 2x2 grammar sweep with the given (GLEU, half-width)."""
    results = report_fixture.results()
    grammar = results["variants"][0]
    names = []
    for (rank, lr), (value, half) in zip([(8, 1e-4), (8, 2e-4), (16, 1e-4), (16, 2e-4)], gleu, strict=True):
        entry = copy.deepcopy(grammar)
        entry["variant"] = variant_name(BASE, {"lora_rank": rank, "learning_rate": lr})
        entry["sweep"] = {"name": "lr_rank", "values": {"lora_rank": rank, "learning_rate": lr}}
        entry["tuned"]["metrics"]["gleu"] = _stat(100 * value, 100 * half)  # GLEU is on 0-100 points
        results["variants"].append(entry)
        names.append(entry["variant"])
    results["sweeps"] = [
        {"name": "lr_rank", "base": BASE, "axes": [["lora_rank"], ["learning_rate"]], "grid_size": 4, "variants": names}
    ]
    validate_results(results)
    return results


def test_the_report_marks_a_clear_winner() -> None:
    text = render_report(sweep_results([(0.50, 0.01), (0.53, 0.01), (0.51, 0.01), (0.58, 0.01)]))
    section = text.split("## Sweep `lr_rank`\n", 1)[1].split("\n## ", 1)[0]
    assert "Base `llama32_3b_grammar_lora`, axes lora_rank × learning_rate: 4 of 4 variants compared" in section
    assert "| Variant | lora_rank | learning_rate | GLEU | acceptable | over-corrections |" in section
    assert f"| `{BASE}__lr2e-4_r16` | 16 | 2e-4 | 58.00 [57.00, 59.00] ★ |" in section
    assert section.count("★") == 2  # the legend and the winner
    assert (
        f"- GLEU: `{BASE}__lr2e-4_r16` is best (58.00 [57.00, 59.00]); its interval is clear of every other's."
        in section
    )
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings.index("## Sweep `lr_rank`") == headings.index("## Results by task") + 1


def test_the_report_claims_no_winner_from_noise() -> None:
    text = render_report(sweep_results([(0.50, 0.04), (0.53, 0.04), (0.51, 0.04), (0.545, 0.04)]))
    section = text.split("## Sweep `lr_rank`\n", 1)[1].split("\n## ", 1)[0]
    assert "★ |" not in section and f"| `{BASE}__lr2e-4_r16` | 16 | 2e-4 | 54.50 [50.50, 58.50] ☆ |" in section
    assert (
        f"- GLEU: no winner. The best point estimate, `{BASE}__lr2e-4_r16` (54.50 [50.50, 58.50]), is within "
        f"noise of every other variant (intervals overlap)."
    ) in section
    partial = render_report(sweep_results([(0.40, 0.01), (0.53, 0.02), (0.41, 0.01), (0.545, 0.02)]))
    assert f"within noise of `{BASE}__lr2e-4_r8` (intervals overlap)" in partial


def test_a_grid_that_scores_the_same_everywhere_has_no_best() -> None:
    text = render_report(sweep_results([(0.0, 0.0)] * 4))
    section = text.split("## Sweep `lr_rank`\n", 1)[1].split("\n## ", 1)[0]
    assert "- GLEU: every variant scores 0.00 [0.00, 0.00]; nothing to choose." in section
    assert "0.00 [0.00, 0.00] |" in section and "0.00 [0.00, 0.00] ☆" not in section and "★ |" not in section


def test_lower_is_better_metrics_pick_the_lowest() -> None:
    results = sweep_results([(0.5, 0.01)] * 3 + [(0.6, 0.01)])
    for entry, rate in zip(results["variants"][2:], (0.30, 0.10, 0.31, 0.29), strict=True):
        entry["tuned"]["metrics"]["over_corrects"] = _stat(rate, 0.02)
    assert f"- over-corrections: `{BASE}__lr2e-4_r8` is best (10.0% [8.0, 12.0])" in render_report(results)


def test_the_schema_checks_sweep_entries() -> None:
    results = sweep_results([(0.5, 0.01)] * 4)
    results["sweeps"][0]["variants"].append("nope")
    with pytest.raises(MprtuneError, match=r"results.sweeps\[0\].variants\[4\]: unknown variant 'nope'"):
        validate_results(results)
    results = sweep_results([(0.5, 0.01)] * 4)
    results["variants"][3]["sweep"]["values"].pop("learning_rate")
    with pytest.raises(MprtuneError, match=r"variants\[1\]: variant .* has no value for learning_rate"):
        validate_results(results)


# --- a real 2x2 sweep on the tiny model --------------------------------------------------------------


def mprtune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mprtune", *args, "--profile", "tiny"],
        capture_output=True,
        text=True,
        env={**os.environ, "MPRTUNE_PROJECT_DIR": os.environ["MPRTUNE_PROJECT_DIR"]},
        timeout=1800,
    )


@pytest.mark.slow
def test_a_2x2_sweep_trains_four_variants_and_the_report_compares_them(tiny_project) -> None:
    text = tiny_project.matrix.read_text().replace(
        "\nprofiles:",
        "\nsweeps:\n  lr_rank:\n    variant: llama32_3b_grammar_lora\n    max_steps: 4\n"
        "    save_steps: 4\n    axes: {lora_rank: [4, 8], learning_rate: [1.0e-3, 5.0e-3]}\n\nprofiles:",
        1,
    )
    tiny_project.write_matrix(text)
    names = [f"{BASE}__lr{lr}_r{rank}" for rank in (4, 8) for lr in ("1e-3", "5e-3")]

    trained = mprtune("train", *names)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    runs = tiny_project.root / "runs-tiny"
    for name in names:
        config = yaml.safe_load((runs / name / "job.yaml").read_text())
        assert (config["lora_rank"], config["learning_rate"]) == (
            int(name.rsplit("_r", 1)[1]),
            float(name.split("__lr")[1].split("_")[0]),
        )
        assert (runs / name / "adapter_model.safetensors").is_file()
        assert json.loads((runs / name / "adapter_config.json").read_text())["r"] == config["lora_rank"]

    compared = mprtune("compare", "--limit", "8", *names)
    assert compared.returncode == 0, compared.stdout[-2000:] + compared.stderr[-3000:]
    report_dir = max((tiny_project.root / "reports").iterdir())
    results = json.loads((report_dir / "results.json").read_text())
    assert results["sweeps"] == [
        {"name": "lr_rank", "base": BASE, "axes": [["lora_rank"], ["learning_rate"]], "grid_size": 4, "variants": names}
    ]
    assert {v["variant"]: v["sweep"]["values"]["lora_rank"] for v in results["variants"]} == dict(
        zip(names, (4, 4, 8, 8), strict=True)
    )
    report = (report_dir / "report.md").read_text()
    section = report.split("## Sweep `lr_rank`\n", 1)[1].split("\n## ", 1)[0]
    assert all(f"| `{name}` |" in section for name in names)
    assert "- GLEU: " in section and ("★" in section.split("|", 1)[1] or "no winner" in section)

    # One more value on an axis later: only the two new grid points would train.
    tiny_project.write_matrix(text.replace("lora_rank: [4, 8]", "lora_rank: [4, 8, 16]"))
    plan = mprtune("plan")
    assert plan.returncode == 0, plan.stderr[-2000:]
    actions = {
        line.split()[0]: line.split()[1]
        for line in plan.stdout.splitlines()
        if line.startswith(f"{BASE}__") and len(line.split()) > 2 and line.split()[1] in ("start", "skip")
    }
    assert {n: actions[n] for n in names} == dict.fromkeys(names, "skip")
    assert actions[f"{BASE}__lr1e-3_r16"] == actions[f"{BASE}__lr5e-3_r16"] == "start"


def test_closer_to_target_metrics_pick_the_length_nearest_the_references() -> None:
    results = sweep_results([(0.5, 0.01)] * 4)
    for entry, ratio in zip(results["variants"][2:], (1.40, 0.60, 1.04, 0.90), strict=True):
        entry["tuned"]["metrics"]["length_ratio"] = _stat(ratio, 0.01)
    from mprtune.evaluate.sweeps import verdict

    stats = {v["variant"]: v["tuned"]["metrics"]["length_ratio"] for v in results["variants"][2:]}
    assert verdict("length_ratio", stats).best == f"{BASE}__lr1e-4_r16"  # 1.04 is the closest to 1.0
    assert verdict("output_words", {"a": _stat(10, 1), "b": _stat(20, 1)}) is None  # descriptive: no best
