"""Task kinds are plugins: found by name, entry point or dotted path; one prompt format everywhere."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import Project

from mprtune.config.matrix import load_matrix
from mprtune.config.render import baseline_key, predict_yaml, render_matrix, training_yaml
from mprtune.errors import ConfigError
from mprtune.tasks import KindError, resolve_kind
from mprtune.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "You fix grammar: answer with the corrected sentence only."


def with_system(project: Project, system: str = SYSTEM) -> None:
    text = project.matrix.read_text()
    text = text.replace(
        '    prompt: "Fix: "\n', f'    prompt: "Fix: "\n    system: {yaml.safe_dump(system).strip()}\n', 1
    )
    project.write_matrix(text)


def test_a_tasks_system_prompt_reaches_training_prediction_and_serving(project: Project) -> None:
    from mprtune.config.render import PredictSpec
    from mprtune.serve.target import api_yaml, resolve_target

    before = load_matrix(project.matrix, "tiny")
    with_system(project)
    matrix = load_matrix(project.matrix, "tiny")
    variant = matrix.variants["llama32_3b_grammar_lora"]
    assert yaml.safe_load(training_yaml(matrix, variant))["default_system"] == SYSTEM
    for spec in (PredictSpec(variant.name, variant, True), PredictSpec(baseline_key(matrix, variant), variant, False)):
        assert yaml.safe_load(predict_yaml(matrix, spec))["default_system"] == SYSTEM
    # the shared baseline is keyed on the prompt format: a cached one without the system prompt is not reused
    assert baseline_key(matrix, variant) != baseline_key(before, before.variants[variant.name])
    ws = Workspace(matrix, project.root, project.root / "runs")
    served = yaml.safe_load(api_yaml(resolve_target(ws, variant.name, base=True)))
    assert served["default_system"] == SYSTEM
    # tasks without one render exactly as before (committed configs unchanged)
    assert "default_system" not in yaml.safe_load(training_yaml(before, before.variants[variant.name]))


def test_formatting_extra_args_are_carried_into_prediction_or_refused(project: Project) -> None:
    text = project.matrix.read_text().replace(
        "  preprocessing_num_workers: 8\n", "  preprocessing_num_workers: 8\n  extra_args: {enable_thinking: false}\n"
    )
    project.write_matrix(text)
    matrix = load_matrix(project.matrix)
    variant = matrix.variants["llama32_3b_grammar_lora"]
    from mprtune.config.render import PredictSpec

    assert yaml.safe_load(predict_yaml(matrix, PredictSpec(variant.name, variant, True)))["enable_thinking"] is False
    project.write_matrix(text.replace("{enable_thinking: false}", "{template: qwen3, default_system: hi}"))
    with_system(project)
    with pytest.raises(ConfigError) as error:
        load_matrix(project.matrix)
    lines = error.value.problems
    assert any(
        ".extra_args.template: set the chat template on the model (models.llama32_3b.template)" in x for x in lines
    )
    assert any(".extra_args.default_system: tasks.grammar.system is set too" in x for x in lines)


def test_an_unknown_kind_is_a_config_error_with_did_you_mean(project: Project) -> None:
    project.write_matrix(project.matrix.read_text().replace("kind: grammar", "kind: gramar", 1))
    with pytest.raises(ConfigError) as error:
        load_matrix(project.matrix)
    assert any("tasks.grammar.kind:" in p and "did you mean 'grammar'?" in p for p in error.value.problems)
    with pytest.raises(KindError, match="cannot import nowhere_at_all"):
        resolve_kind("nowhere_at_all.kinds:Thing")


def test_a_new_kind_is_one_file_in_a_package_of_its_own(project: Project, tmp_path: Path) -> None:
    """The plugin test of issue 19: a temporary package adds a kind by dotted path; nothing in mprtune changes."""
    package = tmp_path / "plugins" / "mykinds"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "shouting.py").write_text(
        textwrap.dedent(
            '''
            """Answers must be upper case: one file, one class."""
            from mprtune.metrics.api import RowMetric, SystemScores, compute_all
            from mprtune.metrics.registry import MetricSpec
            from mprtune.rows import ScoredRow
            from mprtune.tasks import Presentation, TaskKind

            LOUD = MetricSpec("loud", "Fraction of outputs written in upper case.", "rate", "fraction", "higher")


            class Shouting(TaskKind):
                name = "shouting"
                option_types = {"min_length": int}

                @classmethod
                def check_options(cls, options):
                    return [("min_length", "must be >= 1")] if options.get("min_length", 1) < 1 else []

                def metric_specs(self):
                    return {"loud": LOUD}

                def score(self, rows, outputs):
                    scored = [ScoredRow(r, o, o, {"exact": o.isupper()}) for r, o in zip(rows, outputs)]
                    return SystemScores(scored, compute_all([RowMetric(LOUD, lambda s: s.answer.isupper())], scored))

                def presentation(self):
                    return Presentation("loud", ("loud",), ("loud",), ("loud",), "shouting")
            '''
        )
    )
    sys.path.insert(0, str(tmp_path / "plugins"))
    try:
        text = project.matrix.read_text().replace(
            "kind: grammar", "kind: mykinds.shouting:Shouting\n    min_length: 2", 1
        )
        project.write_matrix(text)
        matrix = load_matrix(project.matrix)
        task = matrix.tasks["grammar"]
        assert task.plugin.name == "shouting" and task.plugin.options == {"min_length": 2}
        assert render_matrix(matrix)  # renders like any task
        from mprtune.metrics.api import compare_scores
        from mprtune.rows import EvalRow

        rows = [EvalRow(f"r{i}", "x", ("X",), "shouting", "x", "X") for i in range(20)]
        tuned = task.plugin.score(rows, ["LOUD"] * 18 + ["quiet"] * 2)
        base = task.plugin.score(rows, ["quiet"] * 20)
        diff = compare_scores(tuned, base)["diff"]["loud"]
        assert diff["value"] == pytest.approx(0.9) and diff["ci_low"] > 0.7
        project.write_matrix(text.replace("min_length: 2", "min_length: 0"))
        with pytest.raises(ConfigError, match=r"tasks\.grammar\.min_length: must be >= 1"):
            load_matrix(project.matrix)
    finally:
        sys.path.remove(str(tmp_path / "plugins"))
        for name in [m for m in sys.modules if m.startswith("mykinds")]:
            del sys.modules[name]


def test_built_in_kinds_are_plugins_with_their_preparers_and_licences() -> None:
    from mprtune.tasks import BUILTIN_KINDS

    kinds = {name: resolve_kind(name) for name in BUILTIN_KINDS}
    prepared = {p.name: p.licence.restricted for kind in kinds.values() for p in kind.preparers}
    assert prepared == {"jfleg": True, "paws": False, "qqp": True, "kilt_qa": False, "wiki_desc": False}
    assert {name: kind().presentation().primary for name, kind in kinds.items() if kind.preparers} == {
        "grammar": "gleu",
        "paraphrase": "ibleu",
        "knowledge": "qa_f1",
    }
