"""The custom kind as the matrix sees it: options and their defaults, bad options, eval rows, user metrics."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mprtune.errors import DataError, MprtuneError
from mprtune.metrics.api import compare_scores
from mprtune.rows import Conversation
from mprtune.tasks import resolve_kind
from mprtune.tasks.custom import Custom

LABELS = ["positive", "negative"]


def problems(options: dict) -> dict[str, str]:
    return dict(Custom.check_options(options))


def test_the_registry_finds_the_kind_and_it_needs_no_prompt() -> None:
    kind = resolve_kind("custom")
    assert kind is Custom and kind.name == "custom" and kind.prompt_required is False
    assert set(kind.option_types) >= {"labels", "answer", "metrics", "primary", "json_schema"}


@pytest.mark.parametrize(
    ("options", "metrics", "primary", "answer"),
    [
        ({}, ("exact_match", "chrf"), "exact_match", "strip whitespace"),
        (
            {"labels": LABELS},
            ("accuracy", "macro_f1", "label_f1", "confusion", "out_of_label"),
            "accuracy",
            "strip whitespace -> drop a chat lead-in -> first non-empty line -> normalise as a label",
        ),
        (
            {"json_schema": {"type": "object"}},
            ("json_valid", "json_match", "field_accuracy"),
            "json_match",
            "strip whitespace -> body of a ``` block -> parse as JSON (sorted keys)",
        ),
        ({"metrics": ["chrf", "rouge_l"]}, ("chrf", "rouge_l"), "chrf", "strip whitespace"),
    ],
)
def test_defaults(options: dict, metrics: tuple, primary: str, answer: str) -> None:
    task = Custom(options, task="t")
    assert task.plan.metrics == metrics and task.plan.primary == primary
    assert task.describe_answer().startswith(answer)
    specs = task.metric_specs()
    assert {"empty", "verbose", "no_answer", "output_words", "length_ratio"} <= set(specs)
    assert task.presentation().primary == primary and primary in task.presentation().table
    assert all(spec.description for spec in specs.values())


def test_every_bad_option_is_reported_with_its_key() -> None:
    found = problems(
        {
            "metrics": ["acuracy", "accuracy", "json_match", "regex_match"],
            "answer": ["strip", "frist_line", {"regex": "(unclosed"}, {"json": 1}],
            "primary": "bleu",
            "normalize": "loud",
            "match": "[",
        }
    )
    assert "did you mean 'accuracy'" in found["metrics[0]"]
    assert "needs a label set" in found["metrics[1]"]
    assert "needs a `json` step" in found["metrics[2]"]
    assert "did you mean 'first_line'" in found["answer[1]"]
    assert "does not compile" in found["answer[2].regex"]
    assert "write this step as json" in found["answer[3]"]
    assert "not among this task's metrics" in found["primary"]
    assert "expected one of none, whitespace, lower, squad" in found["normalize"]
    assert "does not compile" in found["match"]


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"labels": []}, "labels", "the label set is empty"),
        ({"labels": ["yes"]}, "labels", "at least two labels"),
        ({"labels": ["yes", "Yes.", "no"]}, "labels[1]", "repeats 'yes'"),
        ({"labels": ["yes", 3]}, "labels[1]", "non-empty string"),
        ({"json_schema": {"type": "objekt"}}, "json_schema", "not a valid JSON Schema"),
        ({"json_schema": {"type": "object"}, "answer": ["strip"]}, "json_schema", "needs a `json` step"),
        ({"answer": []}, "answer", "non-empty list of steps"),
        ({"answer": ["json", "strip"]}, "answer", "`json` must be the last step"),
        ({"labels": LABELS, "primary": "confusion"}, "primary", "not a scalar"),
        ({"metrics": []}, "metrics", "at least one metric"),
        ({"metrics": ["chrf", "chrf"]}, "metrics[1]", "listed twice"),
        ({"metrics": [{"name": "x", "function": "no_such_module_here:f"}]}, "metrics[0].function", "cannot import"),
        ({"metrics": [{"name": "x", "function": "json:nope"}]}, "metrics[0].function", "has no 'nope'"),
        ({"metrics": [{"name": "x", "function": "json:dumps", "per": "batch"}]}, "metrics[0].per", "row, corpus"),
        ({"metrics": [{"name": "x", "function": "os:getcwd"}]}, "metrics[0].function", "must accept"),
        ({"metrics": [{"name": "accuracy", "function": "operator:add"}]}, "metrics[0].name", "already a metric"),
        ({"metrics": [{"name": "x", "function": "json:dumps", "better": "closer"}]}, "metrics[0].target", "closer"),
        ({"metrics": [{"name": "x", "function": "json:dumps", "colour": 1}]}, "metrics[0].colour", "unknown key"),
    ],
)
def test_bad_options(options: dict, key: str, message: str) -> None:
    found = problems(options)
    assert key in found, found
    assert message in found[key]


def test_a_task_built_from_bad_options_refuses_to_exist() -> None:
    with pytest.raises(MprtuneError, match=r"tasks\.t\.metrics\[0\]: unknown metric"):
        Custom({"metrics": ["nope"]}, task="t")


def test_eval_rows_take_the_conversation_and_an_optional_references_list() -> None:
    task = Custom({"labels": LABELS}, task="t")
    conv = Conversation("Great film!", "positive", system="Classify.", history=(("hi", "hello"),))
    row = task.eval_row({"id": 9, "note": "x"}, conv, "eval.jsonl:3", "r3")
    assert (row.id, row.source, row.prompt, row.output, row.references) == (
        "r3",
        "Great film!",
        "Great film!",
        "positive",
        ("positive",),
    )
    assert row.row_type == "custom" and row.system == "Classify." and row.history == (("hi", "hello"),)
    assert row.fields["note"] == "x"
    text = Custom({}, task="t").eval_row({"references": ["a", "b"]}, Conversation("q", "a"), "f:1", "1")
    assert text.references == ("a", "b")
    with pytest.raises(DataError, match=r"f:2: 'references' must be a non-empty list of strings"):
        task.eval_row({"references": "positive"}, conv, "f:2", "2")
    with pytest.raises(DataError, match=r"f:4: the reference 'neutral' is not one of the labels"):
        task.eval_row({}, Conversation("meh", "neutral"), "f:4", "4")


def test_alpaca_rows_without_a_conversation() -> None:
    row = Custom({}, task="t").eval_row(
        {"instruction": "Say hi", "input": "to Bob", "output": "hi Bob"}, None, "f:1", "1"
    )
    assert row.prompt == "Say hi\nto Bob" and row.references == ("hi Bob",)


# --- user metrics ---------------------------------------------------------------------------------


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"mymetrics_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            '''
            def overlap(answer, references):
                """Share of reference words in the answer."""
                words = set(answer.split())
                ref = set(references[0].split())
                return len(words & ref) / len(ref) if ref else None

            def with_row(answer, references, row):
                return row.row.fields.get("weight", 1.0) * (answer == references[0])

            def longest(answers, references):
                return float(max((len(a) for a in answers), default=0))

            def boom(answer, references):
                if answer == "bad":
                    raise ValueError("cannot score this")
                return 1.0

            def not_a_number(answer, references):
                return "high"
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_user_metrics_per_row_and_corpus(user_module: str) -> None:
    options = {
        "metrics": [
            "exact_match",
            {"name": "overlap", "function": f"{user_module}:overlap"},
            {"name": "weighted", "function": f"{user_module}:with_row", "per": "row"},
            {
                "name": "longest",
                "function": f"{user_module}:longest",
                "per": "corpus",
                "unit": "words",
                "better": "none",
            },
        ],
        "primary": "overlap",
    }
    assert problems(options) == {}
    task = Custom(options, task="t")
    specs = task.metric_specs()
    assert specs["overlap"].description.startswith("Share of reference words in the answer.")
    assert specs["overlap"].kind == "mean" and specs["longest"].kind == "corpus" and specs["longest"].unit == "words"
    rows = [
        task.eval_row({"weight": 2.0}, Conversation("q", "the red car"), "f:1", "1"),
        task.eval_row({}, Conversation("q", "a blue boat"), "f:2", "2"),
    ]
    tuned, base = task.score(rows, ["the red car", "a boat"]), task.score(rows, ["red", ""])
    assert tuned.metrics["overlap"].value == pytest.approx((1 + 2 / 3) / 2)
    assert tuned.metrics["weighted"].value == pytest.approx(1.0)
    assert tuned.metrics["longest"].value == 11.0 and base.metrics["longest"].value == 3.0
    assert tuned.rows[0].tags["overlap"] == 1.0
    result = compare_scores(tuned, base, n_resamples=50)
    assert {"overlap", "weighted", "longest"} <= set(result["diff"])
    assert task.presentation().primary == "overlap" and task.good(tuned.rows[0].tags)


def test_a_user_metric_that_raises_names_the_metric_and_the_row(user_module: str) -> None:
    task = Custom({"metrics": [{"name": "fragile", "function": f"{user_module}:boom"}]}, task="t")
    rows = [task.eval_row({}, Conversation("q", "x"), f"f:{i}", f"row-{i}") for i in range(3)]
    with pytest.raises(MprtuneError, match=r"user metric 'fragile' \(.*:boom\) failed on row 'row-1': ValueError"):
        task.score(rows, ["ok", "bad", "ok"])
    odd = Custom({"metrics": [{"name": "odd", "function": f"{user_module}:not_a_number"}]}, task="t")
    with pytest.raises(MprtuneError, match=r"user metric 'odd' .* row 'row-0': TypeError: returned 'high'"):
        odd.score(rows, ["a", "b", "c"])


def test_with_only_user_metrics_the_first_is_primary_and_listed_before_the_form_metrics(user_module: str) -> None:
    task = Custom({"metrics": [{"name": "overlap", "function": f"{user_module}:overlap"}]}, task="t")
    assert task.plan.primary == "overlap" and list(task.metric_specs())[0] == "overlap"
    assert task.presentation().table[0] == "overlap"


def test_yaml_booleans_as_labels_get_a_hint() -> None:
    assert "quote it" in problems({"labels": [True, False]})["labels[0]"]


def test_the_documented_example_is_valid() -> None:
    import yaml

    import mprtune.tasks.custom as module

    doc = module.__doc__ or ""
    block = doc.split("keys::\n", 1)[1].split("\n\n", 1)[0]
    tasks = yaml.safe_load(textwrap.dedent(block))["tasks"]
    common = {"kind", "train", "eval", "system", "cutoff_len", "train_tokens"}
    for name in ("sentiment", "cities"):
        options = {k: v for k, v in tasks[name].items() if k not in common}
        assert problems(options) == {}, name
    mine = {k: v for k, v in tasks["mine"].items() if k not in common}
    assert set(problems(mine)) == {"metrics[1].function"}  # mymetrics is not installed here
    sentiment = Custom({k: v for k, v in tasks["sentiment"].items() if k not in common}, task="sentiment")
    assert sentiment.plan.steps[2].pattern.search("The sentiment is Positive.") is not None
