"""`mprtune compare` and `mprtune score`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.errors import MprtuneError

FIT_PAIRS = [
    ("she go to school every day .", "She goes to school every day ."),
    ("i has two cat .", "I have two cats ."),
    ("they was very happy yesterday .", "They were very happy yesterday ."),
    ("he like read books .", "He likes reading books ."),
    ("we is going to the park .", "We are going to the park ."),
    ("my brother have a new car .", "My brother has a new car ."),
    ("the childrens plays outside .", "The children play outside ."),
    ("she don't want coffee .", "She doesn't want coffee ."),
]


def add_fit_task(project) -> None:
    """A grammar task whose eval rows are its training rows, and a variant trained until it fits them."""
    rows = [
        {"id": f"fit-{i}", "instruction": f"Fix: {src}", "input": "", "output": ref, "source": src, "references": [ref]}
        for i, (src, ref) in enumerate(FIT_PAIRS)
    ]
    (project.root / "data/samples/fit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = project.matrix.read_text()
    text = text.replace(
        "  wiki_desc_eval: {file: wiki_desc_eval.jsonl}\n",
        "  wiki_desc_eval: {file: wiki_desc_eval.jsonl}\n  fit: {file: fit.jsonl}\n",
    )
    text = text.replace(
        "\nrecipe:",
        '  fit:\n    kind: grammar\n    prompt: "Fix: "\n    train: [fit]\n'
        "    eval: [fit]\n    cutoff_len: 128\n    train_tokens: 1000\n\nrecipe:",
        1,
    )
    text = text.replace(
        "\nprofiles:",
        "  - {name: fit_lora, model: llama32_3b, task: fit, max_steps: 200, "
        "learning_rate: 5.0e-3, lora_target: all, additional_target: 'lm_head,embed_tokens', "
        "save_steps: 100, logging_steps: 10}\n\nprofiles:",
        1,
    )
    project.write_matrix(text)
    result = CliRunner().invoke(cli, ["render", "--no-lf-check"])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_the_adapter_is_really_used(tiny_project) -> None:
    add_fit_task(tiny_project)
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "mprtune", *a, "--profile", "tiny"], capture_output=True, text=True
    )
    trained = run("train", "--slots", "1", "fit_lora")
    assert trained.returncode == 0, trained.stderr[-3000:]
    compared = run("compare", "--slots", "2", "fit_lora")
    assert compared.returncode == 0, compared.stderr[-3000:]
    report_dir = Path(compared.stdout.strip().splitlines()[-1].split("Report: ")[1]).parent
    results = json.loads((report_dir / "results.json").read_text())
    entry = results["variants"][0]
    assert entry["n_rows"] == len(FIT_PAIRS)
    tuned, baseline = entry["tuned"]["metrics"], entry["baseline"]["metrics"]
    assert tuned["exact_match"]["value"] >= 0.8, tuned
    assert baseline["exact_match"]["value"] <= 0.1, baseline
    assert tuned["gleu"]["value"] > baseline["gleu"]["value"]
    assert entry["diff"]["exact_match"]["ci_low"] > 0
    timing = entry["tuned"]["timing"]
    assert timing["samples_per_second"] > 0 and timing["output_tokens_per_second"] > 0
    assert timing["peak_memory_mb"] > 100 and timing["memory_kind"] == "rss" and timing["resources"].startswith("CPU")
    assert (
        timing["latency"]["requests"] == 2 and 0 < timing["latency"]["p50_seconds"] <= timing["latency"]["p95_seconds"]
    )
    assert results["models"][0]["random_weights"] is True
    assert results["provenance"]["eval_data_sha256"] and results["provenance"]["versions"]["llamafactory"] == "0.9.5"
    # Baseline and tuned prompts are byte-identical; only the adapter differs.
    runs = tiny_project.root / "runs-tiny"
    prompts = lambda folder: [json.loads(line)["prompt"] for line in (folder / "generated_predictions.jsonl").open()]
    assert prompts(runs / "fit_lora/predict") == prompts(next((runs / "baselines").glob("base__llama32_3b__fit__*")))
    from mprtune.evaluate.schema import validate_results

    validate_results(results)
    report = (report_dir / "report.md").read_text()
    assert "random weights" in report, "a report on random test models says so at the top"
    for section in (
        "## Summary of findings",
        "## Results by task",
        "## Quantitative comparison",
        "## Selected samples",
        "## Training summary",
        "## Recipe",
    ):
        assert section in report
    assert (report_dir / "samples.csv").is_file() and (report_dir / "metrics.png").is_file()
    assert list((report_dir / "wandb").glob("offline-run-*")), "the comparison is logged to an offline W&B run"

    # A second compare reuses the predictions (same configs), says so, and still writes a report.
    again = run("compare", "--slots", "2", "fit_lora")
    assert again.returncode == 0 and "[started]" not in again.stdout
    assert "Predictions: 0 ran, 2 reused from earlier runs" in again.stdout

    # Editing the eval data (two rows swapped) re-runs the predictions instead of reusing stale ones,
    # and every output stays under its own row.
    fit = tiny_project.root / "data/samples/fit.jsonl"
    lines = fit.read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    fit.write_text("\n".join(lines) + "\n")
    swapped = run("compare", "--slots", "2", "fit_lora")
    assert swapped.returncode == 0 and "[started] predict:fit_lora" in swapped.stdout, swapped.stdout + swapped.stderr
    report_dir = Path(swapped.stdout.strip().splitlines()[-1].split("Report: ")[1]).parent
    rows = json.loads((report_dir / "results.json").read_text())["variants"][0]
    assert rows["tuned"]["metrics"]["exact_match"]["value"] == tuned["exact_match"]["value"]


# What W&B, transformers, datasets and DeepSpeed print when left alone; none of it belongs on the terminal.
CHATTER = ("wandb:", "Setting accelerator to CPU", "it/s]", "Map:", "Generating train split")


@pytest.mark.slow
def test_compare_prints_only_its_own_lines_and_a_rerun_says_what_it_reused(tiny_project) -> None:
    variant = "llama32_3b_grammar_lora"
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "mprtune", *a, "--profile", "tiny"], capture_output=True, text=True
    )
    assert run("train", "--slots", "1", variant).returncode == 0
    first = run("compare", "--slots", "2", "--limit", "2", variant)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not [c for c in CHATTER if c in first.stdout + first.stderr], first.stdout + first.stderr
    assert first.stderr == ""
    assert "Predictions: 2 ran, 0 reused from earlier runs" in first.stdout
    wandb_line = next(line for line in first.stdout.splitlines() if line.startswith("W&B: "))
    assert Path(wandb_line.split("offline run in ")[1].split(" (")[0]).is_dir(), wandb_line

    again = run("compare", "--slots", "2", "--limit", "2", variant)
    assert again.returncode == 0 and again.stderr == ""
    assert "[started]" not in again.stdout
    reused = [line for line in again.stdout.splitlines() if line.startswith("[reused] predict:")]
    assert len(reused) == 2, again.stdout  # the baseline and the adapter
    assert "Predictions: 0 ran, 2 reused from earlier runs" in again.stdout


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_score_prints_json_keyed_by_metric_name(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "src", ["she go home .", "i has cat ."])
    hyp = write_lines(tmp_path / "hyp", ["She goes home .", "I has cat ."])
    ref0 = write_lines(tmp_path / "ref0", ["She goes home .", "I have a cat ."])
    ref1 = write_lines(tmp_path / "ref1", ["She went home .", "I have cats ."])
    result = CliRunner().invoke(
        cli,
        [
            "score",
            "--task",
            "grammar",
            "--predictions",
            str(hyp),
            "--source",
            str(src),
            "--references",
            str(ref0),
            "--references",
            str(ref1),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert {"gleu", "exact_match", "acceptable", "over_corrects", "verbose", "length_ratio"} <= set(scores)
    assert scores["exact_match"]["value"] == 0.5 and scores["exact_match"]["n"] == 2
    table = CliRunner().invoke(
        cli,
        ["score", "--task", "paws_only", "--predictions", str(hyp), "--source", str(src), "--references", str(ref0)],
    )
    assert table.exit_code == 0 and "ibleu" in table.output and "copy_rate" in table.output


def test_score_rejects_misaligned_files_with_one_line(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "src", ["a", "b"])
    hyp = write_lines(tmp_path / "hyp", ["a"])
    result = CliRunner().invoke(
        cli, ["score", "--task", "grammar", "--predictions", str(hyp), "--source", str(src), "--references", str(src)]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {hyp}: 1 lines but {src} has 2; files must be aligned line by line"


def eval_rows(outputs: list[str]):
    from mprtune.evaluate.predictions import EvalRow

    return [EvalRow(f"r{i}", f"src {i}", [out], "grammar", f"Fix: src {i}", out) for i, out in enumerate(outputs)]


def test_every_prediction_must_belong_to_its_row(tmp_path: Path) -> None:
    from mprtune.evaluate.predictions import read_predictions

    rows = eval_rows(["She goes home .", "I have a cat ."])
    # LLaMA-Factory's decoder cleans up spaces before punctuation and ends the label with a newline.
    lines = [
        {"prompt": "p", "predict": " She goes home. ", "label": "She goes home.\n"},
        {"prompt": "p", "predict": "I have a cat.", "label": "I have a cat.\n"},
    ]
    path = tmp_path / "generated_predictions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_predictions(tmp_path, rows) == ["She goes home.", "I have a cat."]
    with pytest.raises(MprtuneError, match="2 predictions for 3 eval rows"):
        read_predictions(tmp_path, rows + eval_rows(["x"]))
    swapped = list(reversed(rows))  # the eval file changed order since the predictions were made
    with pytest.raises(MprtuneError, match="generated_predictions.jsonl:1: prediction belongs to another row"):
        read_predictions(tmp_path, swapped)
