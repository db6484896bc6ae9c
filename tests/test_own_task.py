"""A new user's own tasks, end to end on the real SmolLM2: the wheel in a clean venv, an empty folder,
`mprtune init`, a sentiment task (alpaca JSON lines) and a city/date extraction task (sharegpt JSON with
a system field) trained and compared without touching mprtune.

The clean venv holds only the wheel; the heavy dependencies (torch, LLaMA-Factory) come from the
project's venv through a .pth file, because installing them again takes minutes and gigabytes. The
model is converted once per test session (conftest.real_models). What it proves: accuracy with its
paired interval on the user's labels, JSON that does not parse (or is cut short) never counts as a
match, and key order does not matter, on what the real model wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import venv
from pathlib import Path

import pytest
from conftest import ROOT, copy_models
from wheel_helpers import build_wheel, run

pytestmark = [pytest.mark.slow, pytest.mark.realmodel]
ROWS = 16  # eval rows per task: CI's time budget (the examples profile scores all of them)

CITIES = """\
  cities_train: {file: cities_train.json, formatting: sharegpt, columns: {messages: conversations, system: system}}
  cities_eval: {file: cities_eval.json, formatting: sharegpt, columns: {messages: conversations, system: system}}
"""
CITIES_TASK = """\
  cities:
    kind: custom
    train: [cities_train]
    eval: [cities_eval]
    answer: [strip, code_fence, json]
    json_schema: {type: object, required: [city, date]}
    metrics: [json_valid, json_match, field_accuracy]
    primary: json_match
    cutoff_len: 256
    train_tokens: 5000
"""


def user_venv(work: Path) -> Path:
    """bin/ of a fresh venv with the wheel alone (plus the project's dependencies through a .pth)."""
    wheel = build_wheel(work)
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    run(str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel), cwd=work)
    purelib = run(str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work)
    (Path(purelib.stdout.strip()) / "project-deps.pth").write_text(site.getsitepackages()[0] + "\n")
    for script, module in (("llamafactory-cli", "llamafactory.cli"), ("torchrun", "torch.distributed.run")):
        path = bin_dir / script
        path.write_text(f"#!{bin_dir / 'python'}\nimport sys\nfrom {module} import main\nsys.exit(main())\n")
        path.chmod(0o755)
    return bin_dir


def mprtune(bin_dir: Path, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPRTUNE_") and k != "PYTHONPATH"}
    done = run(str(bin_dir / "mprtune"), *args, cwd=cwd, env=env)
    assert "Traceback" not in done.stderr
    return done.stdout


def predictions(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "generated_predictions.jsonl").read_text().splitlines()]


def test_a_new_user_trains_and_compares_two_tasks_of_their_own(
    tmp_path: Path, real_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MPRTUNE_RUNS_DIR", raising=False)
    bin_dir = user_venv(tmp_path / "install")
    project = tmp_path / "my-project"
    mprtune(bin_dir, "init", str(project), cwd=tmp_path)
    # the user's own second task: their files, their lines in the matrix; nothing of mprtune edited
    for name in ("cities_train.json", "cities_eval.json"):
        shutil.copy(ROOT / "data" / "examples" / name, project / "data" / name)
    matrix = (project / "mprtune.yaml").read_text()
    matrix = matrix.replace("\ntasks:\n", f"{CITIES}\ntasks:\n" + CITIES_TASK, 1)
    matrix += "  - {name: small_cities_lora, model: small, task: cities}\n"
    (project / "mprtune.yaml").write_text(matrix)
    copy_models(real_models / "llama32_3b", project / ".mprtune" / "models" / "small")

    mprtune(bin_dir, "render", cwd=project)
    assert "small_cities_lora" in mprtune(bin_dir, "plan", cwd=project)
    mprtune(bin_dir, "train", "--all", "--slots", "2", cwd=project)
    mprtune(bin_dir, "compare", "--all", "--slots", "2", "--limit", str(ROWS), cwd=project)
    results = json.loads(next((project / "reports").glob("*/results.json")).read_text())
    entries = {v["variant"]: v for v in results["variants"]}

    sentiment = entries["small_sentiment_lora"]
    accuracy = sentiment["tuned"]["metrics"]["accuracy"]
    assert accuracy["ci_low"] is not None and accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"]
    assert sentiment["diff"]["accuracy"]["ci_low"] is not None
    assert sentiment["presentation"]["primary"] == "accuracy"
    assert "confusion" in sentiment["tuned"]["details"]

    # the task's system prompt is in the prompt LLaMA-Factory built, for the base model and the adapter alike
    runs = project / "runs"
    from mprtune.scaffold import CITIES_SYSTEM, SENTIMENT_SYSTEM

    for folder in (runs / "small_sentiment_lora" / "predict", runs / "baselines" / sentiment["baseline_key"]):
        assert all(SENTIMENT_SYSTEM in p["prompt"] for p in predictions(folder))
    # a row's own system prompt (sharegpt `system`) too
    assert all(CITIES_SYSTEM in p["prompt"] for p in predictions(runs / "small_cities_lora" / "predict"))

    # JSON: recompute the match from what the model wrote; a parse failure is never a match
    tuned_rows = predictions(runs / "small_cities_lora" / "predict")
    eval_rows = json.loads((project / "data/cities_eval.json").read_text())[:ROWS]  # what compare --limit took
    refs = [json.loads(r["conversations"][1]["value"]) for r in eval_rows]

    def parsed(text: str) -> object:
        try:
            return json.loads(text.strip())
        except ValueError:
            return None

    expected = sum(parsed(p["predict"]) == ref for p, ref in zip(tuned_rows, refs, strict=True)) / len(refs)
    assert entries["small_cities_lora"]["tuned"]["metrics"]["json_match"]["value"] == pytest.approx(expected)

    # the same predictions with keys reversed score the same; cut short, they never match
    def rescored(edit) -> float:
        edited = tmp_path / f"edited-{edit.__name__}.jsonl"
        edited.write_text("".join(json.dumps({**p, "predict": edit(p["predict"])}) + "\n" for p in tuned_rows))
        out = mprtune(
            bin_dir,
            "score",
            "--task",
            "cities",
            "--predictions",
            str(edited),
            "--format",
            "json",
            "--no-ci",
            "--limit",
            str(ROWS),
            cwd=project,
        )
        return json.loads(out)["json_match"]["value"]

    def reversed_keys(text: str) -> str:
        value = parsed(text)
        return json.dumps(dict(reversed(list(value.items())))) if isinstance(value, dict) else text

    def truncated(text: str) -> str:
        return text.strip()[: max(1, len(text.strip()) - 2)]

    assert rescored(reversed_keys) == pytest.approx(expected)
    assert rescored(truncated) == 0.0
    report = next((project / "reports").glob("*/report.md")).read_text()
    assert "Confusion matrix" in report and "The answer is read from each output" in report
