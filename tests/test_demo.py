"""`mprtune demo` (what `make demo` runs) on a copy of the project: every stage, start to report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_pipeline_and_writes_a_complete_report(project) -> None:
    committed = {p: p.read_bytes() for p in (project.root / "llamafactory_configs").rglob("*.yaml")}
    result = subprocess.run([sys.executable, "-m", "mprtune", "demo", "--limit", "4"], capture_output=True,
                            text=True, cwd=project.root)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = Path(result.stdout.strip().splitlines()[-1].removeprefix("Report: "))
    assert report.parent.parent == project.root / "reports"
    text = report.read_text()
    for section in ("## Summary of findings", "## Results by task", "## Quantitative comparison",
                    "## Selected samples", "## Training summary", "## Recipe", "## Metric definitions"):
        assert section in text, section
    results = json.loads((report.parent / "results.json").read_text())
    from mprtune.evaluate.schema import validate_results

    validate_results(results)
    assert len(results["variants"]) == 10 and {t["state"] for t in results["training"]} == {"done"}
    assert {v["task_kind"] for v in results["variants"]} == {"grammar", "paraphrase", "knowledge"}
    for png in ("metrics.png", "loss_curves.png"):
        assert (report.parent / png).read_bytes()[:4] == b"\x89PNG"
    baselines = list((project.root / "runs-demo" / "baselines").iterdir())
    assert len(baselines) == 10, "one shared baseline per (base model, eval set)"
    assert committed == {p: p.read_bytes() for p in (project.root / "llamafactory_configs").rglob("*.yaml")}
