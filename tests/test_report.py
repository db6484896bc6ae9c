"""The compare report: golden files, the results schema, plots, formatting and escaping.

Regenerate the golden files with `MPRTUNE_UPDATE_GOLDEN=1 pytest tests/test_report.py`, then
read the diff: it is the report a team would present.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import report_fixture

from mprtune.errors import MprtuneError
from mprtune.evaluate.formatting import format_diff, format_stat, md_cell, verdict
from mprtune.evaluate.report import render_report, samples_csv, write_report
from mprtune.evaluate.samples import select_samples, tags_for
from mprtune.evaluate.schema import RESULTS_SCHEMA, metric_definitions, metric_directions, validate_results
from mprtune.metrics.registry import METRICS

GOLDEN = Path(__file__).parent / "golden" / "report"
GOLDEN_FILES = ("report.md", "results.json", "samples.csv")


def test_report_matches_golden_files(tmp_path: Path) -> None:
    files = write_report(report_fixture.results(), tmp_path, report_fixture.LOSS_CURVES)
    assert [files.report_md.name, files.results_json.name, files.samples_csv.name] == list(GOLDEN_FILES)
    if os.environ.get("MPRTUNE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in GOLDEN_FILES:
            shutil.copyfile(tmp_path / name, GOLDEN / name)
    for name in GOLDEN_FILES:
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), (
            f"{name} differs from tests/golden/report/{name} (MPRTUNE_UPDATE_GOLDEN=1 rewrites it)"
        )


def test_report_sections_are_in_order() -> None:
    text = render_report(report_fixture.results())
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Summary of findings",
        "## Results by task",
        "## Quantitative comparison",
        "## Selected samples",
        "## Training summary",
        "## Recipe",
        "## Metric definitions",
        "## Provenance",
    ]
    assert text.startswith("# mprtune comparison report\n") and text.endswith("\n") and not text.endswith("\n\n")
    assert "\n\n\n" not in text
    assert "![key metrics](metrics.png)" in text and "![loss curves](loss_curves.png)" in text


def test_summary_says_no_significant_change_when_the_interval_includes_zero() -> None:
    text = render_report(report_fixture.results())
    assert "over-corrections 8.0% → 7.5% (-0.5 pp [-2.9, +1.9], within noise)" in text
    assert "verbosity 34.0% → 2.0% (-32.0 pp [-35.5, -28.5] ✓)" in text
    assert "copy rate 0.6% → 9.4% (+8.8 pp [+7.0, +10.7] ✗)" in text


def test_knowledge_variant_and_missing_intervals_render() -> None:
    results = report_fixture.results()
    variant = results["variants"][0]
    variant.update(variant="llama32_3b_knowledge_lora", task="knowledge", task_kind="knowledge")
    for system in ("baseline", "tuned"):
        variant[system]["metrics"] = {"qa_f1": {"value": 0.5, "ci_low": None, "ci_high": None, "n": 10}}
        variant[system]["timing"]["peak_memory_mb"] = None
    variant["diff"] = {"qa_f1": {"value": 0.0, "ci_low": None, "ci_high": None}}
    results["metrics"]["qa_f1"] = metric_definitions(["qa_f1"])["qa_f1"]
    results["samples"] = [s for s in results["samples"] if s["variant"] != "llama32_3b_grammar_lora"]
    validate_results(results)
    text = render_report(results)
    assert "`llama32_3b_knowledge_lora` (knowledge, 747 rows): QA F1 50.0% → 50.0% (0.0 pp)" in text
    assert "| QA F1 | 50.0% | 50.0% | 0.0 pp |" in text


# --- schema ---------------------------------------------------------------------------------------


def _error(results: dict[str, Any]) -> str:
    with pytest.raises(MprtuneError) as info:
        validate_results(results)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_schema_accepts_the_fixture() -> None:
    validate_results(report_fixture.results())


def test_schema_names_the_missing_key() -> None:
    results = report_fixture.results()
    del results["variants"][0]["baseline"]["timing"]["samples_per_second"]
    assert "results.variants[0].baseline.timing.samples_per_second: missing required key" in _error(results)
    results = report_fixture.results()
    del results["created_at"]
    assert "results.created_at: missing required key" in _error(results)


def test_schema_names_the_wrongly_typed_key() -> None:
    results = report_fixture.results()
    results["variants"][1]["n_rows"] = "1000"
    assert "results.variants[1].n_rows: '1000' is not of type 'integer'" in _error(results)
    results = report_fixture.results()
    results["variants"][0]["tuned"]["metrics"]["gleu"]["ci_low"] = "0.5"
    assert "results.variants[0].tuned.metrics.gleu.ci_low" in _error(results)
    results = report_fixture.results()
    results["samples"][0]["tuned_tags"] = ["exact"]
    assert "results.samples[0].tuned_tags[0]" in _error(results)


def test_schema_rejects_typos_unknown_metrics_and_non_finite_numbers() -> None:
    results = report_fixture.results()
    results["variants"][0]["n_row"] = 3
    assert "results.variants[0]" in _error(results) and "'n_row' was unexpected" in _error(results)
    results = report_fixture.results()
    results["variants"][0]["diff"]["rouge_l"] = {"value": 0.1, "ci_low": None, "ci_high": None}
    assert "results.variants[0].diff.rouge_l: metric not defined in results.metrics" in _error(results)
    results = report_fixture.results()
    results["variants"][0]["baseline"]["metrics"]["gleu"]["value"] = math.nan
    assert "results.variants[0].baseline.metrics.gleu.value: not a finite number" in _error(results)
    results = report_fixture.results()
    results["samples"][0]["variant"] = "nope"
    assert "results.samples[0].variant: unknown variant 'nope'" in _error(results)


def test_write_report_validates_before_writing(tmp_path: Path) -> None:
    results = report_fixture.results()
    del results["recipe"]
    with pytest.raises(MprtuneError, match=r"results\.recipe"):
        write_report(results, tmp_path, {})
    assert list(tmp_path.iterdir()) == []


def _walk(schema: Any, path: str = "") -> list[str]:
    """Paths of schemas under `properties` / `additionalProperties` / `items` lacking a description."""
    missing: list[str] = []
    if not isinstance(schema, dict):
        return missing
    for name, sub in schema.get("properties", {}).items():
        if "description" not in sub:
            missing.append(f"{path}.{name}")
        missing += _walk(sub, f"{path}.{name}")
    for key in ("additionalProperties", "items", "propertyNames"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            if "description" not in sub:
                missing.append(f"{path}[{key}]")
            missing += _walk(sub, f"{path}[{key}]")
    return missing


def test_every_schema_property_is_described() -> None:
    assert RESULTS_SCHEMA["description"]
    assert len(RESULTS_SCHEMA["properties"]) >= 9
    assert _walk(RESULTS_SCHEMA) == []


def test_metric_definitions_carry_the_registry_direction_and_unit() -> None:
    directions = metric_directions()
    assert set(directions) == set(METRICS)
    assert directions["gleu"] is True and directions["verbose"] is False
    defs = metric_definitions(["gleu", "length_ratio", "empty"])
    assert defs["gleu"]["unit"] == "points" and defs["gleu"]["better"] == "higher"
    assert defs["length_ratio"]["better"] == "closer" and defs["length_ratio"]["target"] == 1.0
    assert defs["empty"]["better"] == "lower" and defs["empty"]["unit"] == "fraction"


# --- plots ----------------------------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("curves", [report_fixture.LOSS_CURVES, {}], ids=["curves", "no-curves"])
def test_plots_are_valid_pngs(tmp_path: Path, curves: dict) -> None:
    files = write_report(report_fixture.results(), tmp_path, curves)
    assert [p.name for p in files.plots] == ["metrics.png", "loss_curves.png"]
    for plot in files.plots:
        data = plot.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, plot


# --- formatting -----------------------------------------------------------------------------------


def test_format_stat_uses_one_scale_per_unit() -> None:
    assert format_stat({"value": 0.41234, "ci_low": 0.38, "ci_high": 0.4451}, "fraction") == "41.2% [38.0, 44.5]"
    assert format_stat({"value": 0.412, "ci_low": None, "ci_high": None}, "fraction") == "41.2%"
    assert format_stat({"value": 41.249, "ci_low": 39.0, "ci_high": 43.0}, "points") == "41.25 [39.00, 43.00]"
    assert format_stat({"value": 31.7712, "ci_low": 30.2, "ci_high": 33.3}, "points") == "31.77 [30.20, 33.30]"
    assert format_stat({"value": 18.93, "ci_low": 18.2, "ci_high": 19.6}, "words") == "18.9 [18.2, 19.6]"
    assert format_stat({"value": 1.0112, "ci_low": None, "ci_high": None}, "ratio") == "1.01"
    assert format_stat({"value": -0.00001, "ci_low": None, "ci_high": None}, "points") == "0.00"
    assert format_stat(None, "points") == "–"


def test_format_diff_is_signed_with_percentage_points_for_fractions() -> None:
    assert (
        format_diff({"value": 0.1234, "ci_low": 0.081, "ci_high": 0.16}, "fraction", "✓") == "+12.3 pp [+8.1, +16.0] ✓"
    )
    assert format_diff({"value": 12.6, "ci_low": 10.2, "ci_high": 15.1}, "points") == "+12.60 [+10.20, +15.10]"
    assert format_diff({"value": 0.0, "ci_low": None, "ci_high": None}, "points") == "0.00"


def stat(value: float) -> dict:
    return {"value": value, "ci_low": None, "ci_high": None, "n": 10}


@pytest.mark.parametrize(
    "name, base, tuned, low, high, expected",
    [
        ("gleu", 40.0, 45.0, 1.0, 9.0, "✓"),  # up, and up is good
        ("gleu", 45.0, 40.0, -9.0, -1.0, "✗"),  # down, and up is good
        ("verbose", 0.9, 0.1, -0.9, -0.7, "✓"),  # a drop in verbosity is good
        ("over_corrects", 0.1, 0.3, 0.1, 0.3, "✗"),  # more over-corrections is bad
        ("empty", 0.0, 0.4, 0.3, 0.5, "✗"),  # a model that outputs nothing never looks good
        ("length_ratio", 1.44, 0.29, -1.2, -1.1, "✗"),  # shorter is not better: further from 1.0
        ("length_ratio", 0.89, 1.00, 0.05, 0.15, "✓"),  # closer to the references' length
        ("length_gap", 6.0, 1.5, -5.0, -4.0, "✓"),  # fewer words away from the closest reference
        ("output_words", 24.0, 12.0, -13.0, -11.0, ""),  # descriptive: no verdict either way
        ("gleu", 40.0, 41.0, -0.5, 2.0, ""),  # interval includes 0: within noise
        ("gleu", 40.0, 41.0, 0.0, 2.0, ""),  # touching 0 is not excluding it
    ],
)
def test_verdicts_follow_the_registry_direction(
    name: str, base: float, tuned: float, low: float, high: float, expected: str
) -> None:
    assert verdict(name, stat(base), stat(tuned), {"value": tuned - base, "ci_low": low, "ci_high": high}) == expected


def test_no_interval_no_verdict() -> None:
    assert verdict("gleu", stat(40.0), stat(50.0), {"value": 10.0, "ci_low": None, "ci_high": None}) == ""


# --- escaping, tags, sample selection -------------------------------------------------------------


def test_md_cell_escapes_pipes_and_newlines() -> None:
    assert md_cell("a | b") == "a \\| b"
    assert md_cell("line1\nline2\r\nline3") == "line1<br>line2<br>line3"
    assert md_cell("*bold* `code` <tag> back\\slash") == "\\*bold\\* \\`code\\` \\<tag\\> back\\\\slash"
    assert md_cell("   ") == "*(empty)*"
    assert md_cell("x" * 10, limit=4) == "xxxx…"


def test_samples_with_pipes_and_newlines_keep_the_table_intact() -> None:
    results = report_fixture.results()
    sample = results["samples"][0]
    sample["tuned_output"] = "first | line\nsecond || line"
    text = render_report(results)
    row = next(line for line in text.splitlines() if "first \\| line" in line)
    assert "first \\| line<br>second \\|\\| line" in row
    header = next(line for line in text.splitlines() if line.startswith("| Row (id) |"))
    unescaped = lambda line: line.replace("\\|", "").count("|")
    assert unescaped(row) == unescaped(header) == 7


def test_tags_for() -> None:
    assert tags_for(
        {
            "exact": True,
            "verbose": False,
            "verbose_reasons": [],
            "length_words": 3,
            "acceptable": True,
            "over_corrects": False,
        }
    ) == ["EXACT", "ACCEPTABLE"]
    assert tags_for(
        {"exact": False, "verbose": True, "verbose_reasons": ["preamble"], "length_words": 9, "over_corrects": True}
    ) == ["VERBOSE", "OVER-CORRECTS"]
    assert tags_for({"empty": True, "exact": False, "verbose": None, "length_words": 0, "copy": None}) == ["EMPTY"]
    assert tags_for(
        {"exact": False, "verbose": False, "length_words": 2, "row_kind": "qa", "qa_exact_match": True, "qa_f1": 1.0}
    ) == ["QA-EXACT"]


def test_select_samples_prefers_informative_rows_deterministically() -> None:
    rows = copy.deepcopy(report_fixture.GRAMMAR_ROWS)
    first = select_samples({"v": rows}, k=3)
    assert first == select_samples({"v": copy.deepcopy(rows)}, k=3)
    # a fix (row 0), a regression (row 2), a changed output (row 3); never the identical row 1
    assert [s["row"] for s in first] == [0, 2, 3]
    assert first[0]["reference"] == "I want to go to school tomorrow ."
    assert first[0]["baseline_tags"] == ["VERBOSE"] and first[0]["tuned_tags"] == ["EXACT", "ACCEPTABLE"]
    assert [s["row"] for s in select_samples({"v": rows}, k=10)] == list(range(7))  # filler last
    assert select_samples({"v": rows[1:2]}, k=2)[0]["row"] == 0  # identical rows still fill


def test_control_characters_in_model_output_are_shown_escaped_not_passed_through() -> None:
    cell = md_cell("ok\x1b[31mred\x00 end\u200b")
    assert "\x1b" not in cell and "\x00" not in cell and "\u200b" not in cell
    assert "\\u001b" in cell and "\\u0000" in cell and "\\u200b" in cell


def test_samples_csv_lists_every_reference_of_a_row() -> None:
    import csv
    import io
    import json

    results = report_fixture.results()
    rows = list(csv.DictReader(io.StringIO(samples_csv(results["samples"]))))
    first = results["samples"][0]
    assert json.loads(rows[0]["references"]) == first["references"] and len(first["references"]) > 1
