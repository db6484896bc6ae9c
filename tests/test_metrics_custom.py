"""The custom kind's metrics on constructed rows: labels, JSON, chrF/BLEU, ROUGE-L, the honesty rules, resampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mprtune.metrics.api import compare_scores
from mprtune.metrics.bootstrap import resample_counts
from mprtune.metrics.extract import Pipeline, parse_steps
from mprtune.metrics.labels import label_statistics, macro_f1, per_label_f1
from mprtune.metrics.sacre import chrf_from_stats, chrf_statistics
from mprtune.metrics.structured import json_equal
from mprtune.rows import Conversation
from mprtune.tasks.custom import Custom

LABELS = ["positive", "negative"]
CITY = '{"city": "Cairo", "date": "2025-10-07"}'
SCHEMA = {
    "type": "object",
    "required": ["city", "date"],
    "properties": {"city": {"type": "string"}, "date": {"type": "string"}},
}


def rows_of(task: Custom, references: list[str]) -> list:
    return [
        task.eval_row({}, Conversation(f"input {i}", ref), f"eval.jsonl:{i + 1}", str(i))
        for i, ref in enumerate(references)
    ]


def scored(options: dict, references: list[str], outputs: list[str]):
    task = Custom(options, task="t")
    return task, task.score(rows_of(task, references), outputs)


def pipeline(steps: list, labels: tuple[str, ...] = ()) -> Pipeline:
    parsed, problems = parse_steps(steps)
    assert problems == []
    return Pipeline(parsed, labels)


# --- answer extraction ----------------------------------------------------------------------------


def test_the_label_pipeline_turns_positive_dot_into_positive_and_the_regex_finds_it_in_a_sentence() -> None:
    labels = pipeline(["strip", "drop_preamble", "first_line", "label"], tuple(LABELS))
    assert labels.run("Positive.").text == "positive"
    assert labels.run("Sure!\n\nPositive").text == "positive"  # a lead-in on its own line
    assert labels.run("  Sure! NEGATIVE\nbecause it is bad").text == "negative"
    assert labels.run("The sentiment is positive").text == "positive"  # a lead-in drop_preamble knows
    assert labels.run("I would say positive").text == "i would say positive"  # names no label
    regex = pipeline(["strip", {"regex": r"(?i)\b(positive|negative)\b"}, "label"], tuple(LABELS))
    assert regex.run("I would say Positive!").text == "positive"
    named = pipeline([{"regex": r"(x)?label: (?P<answer>\w+)"}], tuple(LABELS))
    assert named.run("label: negative").text == "negative"
    missed = regex.run("I cannot tell")
    assert missed.text is None and missed.error is not None and "no match" in missed.error


def test_json_step_is_strict_and_canonical() -> None:
    p = pipeline(["strip", "code_fence", "json"])
    pretty = p.run('```json\n{\n  "date": "2025-10-07",\n  "city": "Cairo"\n}\n```')
    assert pretty.parsed and pretty.text == CITY
    for bad in ('{"city": "Rome", "date": ', "city: Cairo, date: 2025-10-07", '{"a": NaN}', '{"a": 1} trailing'):
        out = p.run(bad)
        assert out.text is None and not out.parsed and "invalid JSON" in (out.error or "")


def test_json_equality_ignores_key_order_but_not_types() -> None:
    assert json_equal({"a": 1, "b": [1, 2]}, {"b": [1, 2.0], "a": 1})
    assert not json_equal({"a": True}, {"a": 1})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal({"a": 1}, {"a": 1, "b": None})


# --- labels ---------------------------------------------------------------------------------------


def test_label_metrics_count_out_of_label_and_empty_as_wrong() -> None:
    refs = ["positive", "negative", "positive", "negative", "positive"]
    outs = ["Positive.", "negative", "neutral", "", "I would say positive"]
    task, s = scored({"labels": LABELS}, refs, outs)
    m = {k: v.value for k, v in s.metrics.items()}
    assert m["accuracy"] == pytest.approx(2 / 5)  # neutral, empty and the sentence are wrong
    assert m["out_of_label"] == pytest.approx(2 / 4)  # over non-empty outputs
    assert m["empty"] == pytest.approx(1 / 5)
    # positive: tp 1, fn 2, fp 0 -> 2/4; negative: tp 1, fn 1 -> 2/3
    assert m["f1_positive"] == pytest.approx(0.5) and m["f1_negative"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert s.details["confusion"]["matrix"] == [[1, 0, 2, 0], [0, 1, 0, 1]]
    assert s.rows[3].tags["correct"] is False and task.sample_tags(s.rows[3].tags) == ["EMPTY"]
    assert "OUT_OF_LABEL" in task.sample_tags(s.rows[2].tags)
    assert task.good(s.rows[0].tags) and not task.good(s.rows[3].tags)


def test_the_regex_pipeline_scores_the_sentence() -> None:
    options = {"labels": LABELS, "answer": ["strip", {"regex": r"(?i)\b(positive|negative)\b"}, "label"]}
    _, s = scored(options, ["positive", "negative"], ["The sentiment is positive", "I think it is NEGATIVE."])
    assert s.metrics["accuracy"].value == 1.0 and s.metrics["out_of_label"].value == 0.0


def test_an_all_empty_system_is_never_good() -> None:
    refs = ["positive", "negative", "positive"]
    _, s = scored(
        {"labels": LABELS, "metrics": [*["accuracy", "macro_f1", "out_of_label"], "exact_match"]}, refs, [""] * 3
    )
    m = {k: v.value for k, v in s.metrics.items()}
    assert m["accuracy"] == 0.0 and m["exact_match"] == 0.0 and m["macro_f1"] == 0.0 and m["empty"] == 1.0
    assert "out_of_label" not in m and "verbose" not in m  # form metrics cover non-empty outputs only
    _, j = scored({"json_schema": SCHEMA}, [CITY] * 3, ["", " ", "\n"])
    assert j.metrics["json_valid"].value == 0.0 and j.metrics["json_match"].value == 0.0
    assert j.metrics["field_accuracy"].value == 0.0


def test_macro_f1_resampling_agrees_with_a_direct_recomputation() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    gold = rng.integers(0, 3, 60)
    pred = np.where(rng.random(60) < 0.6, gold, rng.integers(-1, 3, 60))
    refs = [labels[g] for g in gold]
    outs = [labels[p] if p >= 0 else "something else" for p in pred]
    _, s = scored({"labels": labels}, refs, outs)
    counts = resample_counts(60, 5, seed=3)
    resampled = s.metrics["macro_f1"].resampled(counts)
    per_label = s.metrics["f1_b"].resampled(counts)
    for r in range(5):
        index = np.repeat(np.arange(60), counts[r])
        g, p = gold[index], pred[index]
        f1s = []
        for k in range(3):
            tp, fp, fn = np.sum((p == k) & (g == k)), np.sum((p == k) & (g != k)), np.sum((g == k) & (p != k))
            f1s.append(np.nan if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
        assert resampled[r] == pytest.approx(np.nanmean(f1s))
        assert per_label[r] == pytest.approx(f1s[1], nan_ok=True)


def test_per_label_f1_is_undefined_for_a_label_nobody_names() -> None:
    stats = label_statistics([0, 0], [0, -1], 2)
    f1 = per_label_f1(stats.sum(axis=0), 2)
    assert f1[0] == pytest.approx(2 / 3) and np.isnan(f1[1])
    assert macro_f1(stats.sum(axis=0), 2) == pytest.approx(2 / 3)


# --- JSON -----------------------------------------------------------------------------------------


def test_json_metrics_truncated_is_no_match_key_order_does_not_matter_pretty_is_not_verbose() -> None:
    outputs = [
        json.dumps({"date": "2025-10-07", "city": "Cairo"}, indent=2),  # pretty, other key order
        '{"city": "Rome", "date": ',  # truncated
        "city: Cairo, date: 2025-10-07",  # not JSON
        '{"city": "Cairo", "date": 20251007}',  # parses, fails the schema, one field right
    ]
    task, s = scored({"json_schema": SCHEMA}, [CITY] * 4, outputs)
    tags = [r.tags for r in s.rows]
    assert [t["json_match"] for t in tags] == [True, False, False, False]
    assert [t["json_valid"] for t in tags] == [True, False, False, False]
    assert "schema" in tags[3]["json_error"] and tags[3]["fields"] == {"city": True, "date": False}
    assert tags[0]["verbose"] is False and tags[0]["exact"] is True
    m = {k: v.value for k, v in s.metrics.items()}
    assert m["json_match"] == 0.25 and m["field_accuracy"] == pytest.approx(3 / 8)
    assert m["field_city"] == 0.5 and m["field_date"] == 0.25
    assert m["no_answer"] == 0.5 and m["verbose"] == 0.0
    assert task.presentation().primary == "json_match"
    assert "INVALID_JSON" in task.sample_tags(tags[1])


def test_a_json_reference_that_does_not_parse_is_a_data_error() -> None:
    task = Custom({"json_schema": SCHEMA}, task="t")
    with pytest.raises(Exception, match=r"eval.jsonl:7: the reference is not JSON"):
        task.eval_row({}, Conversation("q", "{oops"), "eval.jsonl:7", "6")


# --- text metrics ---------------------------------------------------------------------------------


def test_chrf_statistics_agree_with_sacrebleu_on_any_resample() -> None:
    from sacrebleu.metrics.chrf import CHRF

    hyps = ["the cat sat on the mat", "", "a dog", "hello world", "Cairo, Egypt"]
    refs = [["the cat is on the mat", "a cat sat"], ["nothing"], ["the dog"], ["hello world"], ["Cairo"]]
    stats = chrf_statistics(hyps, refs)
    whole = CHRF().corpus_score(hyps, [[r[0] for r in refs], [r[-1] for r in refs]]).score
    assert float(chrf_from_stats(stats.sum(axis=0))) == pytest.approx(whole)
    picked = [0, 0, 3, 4]
    sub = CHRF().corpus_score([hyps[i] for i in picked], [[refs[i][0] for i in picked], [refs[i][-1] for i in picked]])
    assert float(chrf_from_stats(stats[picked].sum(axis=0))) == pytest.approx(sub.score)


def test_text_metrics_exact_chrf_bleu_rouge_and_regex() -> None:
    options = {
        "metrics": ["exact_match", "chrf", "bleu", "rouge_l", "regex_match"],
        "normalize": "lower",
        "match": r"\d{4}-\d{2}-\d{2}",
        "answer": ["strip", "drop_preamble"],
    }
    refs = ["2025-10-07", "2024-01-01", "1999-12-31"]
    task, s = scored(options, refs, ["Answer: 2025-10-07", "2024-1-1", ""])
    m = {k: v.value for k, v in s.metrics.items()}
    assert m["exact_match"] == pytest.approx(1 / 3) and m["regex_match"] == pytest.approx(1 / 3)
    assert 0 < m["chrf"] < 100 and 0 <= m["bleu"] < 100 and m["rouge_l"] == pytest.approx(1 / 3)
    assert s.rows[0].tags["verbose"] is True  # the preamble is outside the answer
    assert task.describe_answer() == "strip whitespace -> drop a chat lead-in"


def test_compare_scores_gives_paired_intervals_for_every_custom_metric() -> None:
    refs = ["positive", "negative"] * 20
    base = ["positive"] * 40
    tuned = [r if i % 4 else "neutral" for i, r in enumerate(refs)]
    task = Custom({"labels": LABELS}, task="t")
    rows = rows_of(task, refs)
    result = compare_scores(task.score(rows, tuned), task.score(rows, base), n_resamples=300)
    assert set(result["diff"]) >= {"accuracy", "macro_f1", "f1_positive", "f1_negative", "out_of_label"}
    accuracy = result["diff"]["accuracy"]
    assert accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"]
    assert result["tuned"]["accuracy"]["value"] == pytest.approx(30 / 40)


def test_drop_preamble_on_its_own_line_and_first_line_last_line() -> None:
    p = pipeline(["drop_preamble", "strip", "json"])
    assert p.run('Here is the JSON:\n{"b": 1, "a": 2}').text == '{"a": 2, "b": 1}'
    assert pipeline(["last_line"]).run("thinking...\n\nyes\n").text == "yes"
    assert pipeline(["unquote"]).run('"Paris"').text == "Paris"


def test_verdicts_come_from_the_task_s_own_specs() -> None:
    from mprtune.metrics.registry import improvement_of

    specs = Custom({"labels": LABELS}, task="t").metric_specs()
    assert improvement_of(specs["accuracy"], 0.5, 0.7) is True
    assert improvement_of(specs["out_of_label"], 0.1, 0.3) is False
    assert improvement_of(specs["length_ratio"], 1.4, 1.1) is True
    assert improvement_of(specs["accuracy"], 0.5, 0.7, ci_low=-0.01, ci_high=0.4) is None


def test_find_label_reads_the_one_label_a_chat_answer_names() -> None:
    """ "The review is negative." is an answer; naming both labels (or none) is no answer, never a guess."""
    from mprtune.rows import EvalRow
    from mprtune.tasks.custom import Custom

    kind = Custom({"labels": ["positive", "negative"], "answer": ["strip", "first_line", "find_label"]}, task="t")
    rows = [EvalRow(str(i), "x", ("negative",), "custom", "x", "negative") for i in range(4)]
    outputs = [
        "The review is negative.\nIt mentions positive things too.",
        "NEGATIVE!",
        "positive, but also negative",
        "Nice.",
    ]
    scored = kind.score(rows, outputs)
    assert [r.answer for r in scored.rows] == ["negative", "negative", None, None]
    assert scored.metrics["accuracy"].value == 0.5
    assert Custom.check_options({"answer": ["strip", "find_label"]}) == [
        ("answer[1]", "the find_label step needs a label set: add `labels: [...]`")
    ]
