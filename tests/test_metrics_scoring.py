import json
import math
from pathlib import Path

import pytest
from data_helpers import SAMPLES, jfleg_dir

from mprtune.metrics import METRICS, MetricSpec, compare_rows, improvement, paired_diffs, per_row, score_rows
from mprtune.metrics.gleu import corpus_gleu
from mprtune.metrics.tokens import detokenize

G_OUT = ["he goes to school", "she like cats"]
G_SRC = ["he go to school", "she like cats"]
G_REF = [["he goes to school"], ["she likes cats"]]
COMMON = {"exact_match", "empty", "verbose", "output_words", "reference_words", "length_gap", "length_ratio"}


def _values(res):
    return {k: v["value"] for k, v in res.items()}


def _eval_rows(name: str):
    rows = [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]
    return [r["source"] for r in rows], [r["references"] for r in rows], [r.get("kind", "qa") for r in rows]


def _jfleg(split: str = "test"):
    folder = jfleg_dir()
    if folder is None:
        pytest.skip("real JFLEG not available (../shared/data/jfleg or $MPRTUNE_JFLEG_DIR)")
    read = lambda name: [" ".join(line.split()) for line in (folder / name).read_text().splitlines()]
    return read(f"{split}.src"), [list(r) for r in zip(*(read(f"{split}.ref{k}") for k in range(4)), strict=False)]


def _sample_jfleg():
    raw = Path(SAMPLES) / "raw" / "jfleg"
    read = lambda name: [" ".join(line.split()) for line in (raw / name).read_text().splitlines()]
    return read("test.src"), [list(r) for r in zip(*(read(f"test.ref{k}") for k in range(4)), strict=False)]


# --- values ---------------------------------------------------------------------------------


def test_grammar_values_hand_computed():
    res = score_rows("grammar", G_OUT, G_SRC, G_REF, with_ci=False)
    assert set(res) == COMMON | {"gleu", "acceptable", "over_corrects"}
    v = _values(res)
    assert v["exact_match"] == 0.5  # row 1 only
    assert v["empty"] == 0.0 and v["verbose"] == 0.0
    assert v["output_words"] == 3.5  # (4 + 3) / 2
    assert v["reference_words"] == 3.5  # (4 + 3) / 2
    assert v["length_gap"] == 0.0 and v["length_ratio"] == 1.0  # 7 / 7
    assert v["gleu"] == pytest.approx(100 * (2 / 7) ** 0.25)  # points; see test_metrics_gleu
    assert v["acceptable"] == 1.0  # row 1 exact, row 2 one word ("like") from its reference
    assert v["over_corrects"] == 0.0
    assert all(m["ci_low"] is None and m["ci_high"] is None and m["n"] == 2 for m in res.values())


def test_ci_present_contains_value_and_is_json_serialisable():
    outs = G_OUT * 10
    res = score_rows("grammar", outs, G_SRC * 10, G_REF * 10, seed=1, n_resamples=2000)
    for name, m in res.items():
        assert m["ci_low"] <= m["value"] + 1e-9 and m["value"] <= m["ci_high"] + 1e-9, name
    json.dumps(res, allow_nan=False)
    assert res == score_rows("grammar", outs, G_SRC * 10, G_REF * 10, seed=1, n_resamples=2000)
    assert res["gleu"]["value"] == pytest.approx(corpus_gleu(outs, G_SRC * 10, G_REF * 10).score)


def test_paraphrase_values_hand_computed():
    outs = ["the cat sat on the mat", "a b c d"]
    srcs = ["the cat sat on the mat", "w x y z"]
    refs = [["the cat sat on a mat"], ["a b c d", "w x y z"]]
    v = _values(score_rows("paraphrase", outs, srcs, refs, with_ci=False))
    bleu = 100 * 0.225**0.25  # 68.8722, hand-computed in test_metrics_paraphrase
    self_bleu = 100 * 0.1875**0.25  # 65.8037
    assert v["bleu"] == pytest.approx(bleu)
    assert v["self_bleu"] == pytest.approx(self_bleu)
    assert v["ibleu"] == pytest.approx(0.8 * bleu - 0.2 * self_bleu)  # 41.9369
    assert v["copy_rate"] == 0.5
    assert v["exact_match"] == 0.5
    assert "gleu" not in v and "qa_f1" not in v


def test_paraphrase_copy_written_normally_is_a_copy():
    src = "He said , `` I ca n't come '' ."
    res = score_rows(
        "paraphrase", ['He said, "I can\'t come".'], [src], [["He told me he could not come ."]], with_ci=False
    )
    assert res["copy_rate"]["value"] == 1.0
    assert res["self_bleu"]["value"] == pytest.approx(100.0)


def test_knowledge_row_kinds_and_omission():
    outs = ["Paris", "The city of Lyon", "police kill the gunman"]
    refs = [["Paris"], ["Lyon"], ["police killed the gunman"]]
    kinds = ["qa", "qa", "description"]
    res = score_rows("knowledge", outs, ["q1", "q2", "q3"], refs, kinds, with_ci=False)
    v = _values(res)
    assert v["qa_exact_match"] == 0.5 and res["qa_exact_match"]["n"] == 2
    assert v["qa_f1"] == pytest.approx(0.75)  # (1 + 0.5) / 2
    assert v["rouge_l"] == pytest.approx(2 / 3) and res["rouge_l"]["n"] == 1
    assert v["exact_match"] == pytest.approx(1 / 3)
    assert v["verbose"] == 0.0  # 4 words for a 1-word answer: within the 3-word slack
    only_qa = score_rows("knowledge", outs[:2], ["q1", "q2"], refs[:2], ["qa", "qa"], with_ci=False)
    assert "rouge_l" not in only_qa and "qa_f1" in only_qa


def test_short_qa_answers_are_exact_and_not_verbose():
    rows = per_row(
        "knowledge", ["The Beatles", "366 days"], ["who?", "how many?"], [["Beatles"], ["366"]], ["qa", "qa"]
    )
    assert rows[0]["exact"] and rows[0]["qa_exact_match"] and not rows[0]["verbose"]
    assert not rows[1]["verbose"] and not rows[1]["exact"]


def test_per_row_tags():
    rows = per_row("grammar", ["Sure! he goes to school", "she like cats", ""], G_SRC + ["x y"], G_REF + [["x z"]])
    assert rows[0]["verbose"] and rows[0]["verbose_reasons"] == ["preamble"]
    assert rows[0]["answer"] == "he goes to school" and rows[0]["over_corrects"] is False
    assert rows[0]["length_words"] == 6 and not rows[0]["exact"]  # "Sure ! he goes to school"
    assert rows[1]["acceptable"] and rows[1]["changed_words"] == 0 and rows[1]["answer"] == "she like cats"
    assert not rows[1]["over_corrects"] and not rows[1]["empty"]
    empty = rows[2]
    assert empty["empty"] and empty["verbose"] is None and empty["answer"] is None
    assert not empty["exact"] and not empty["acceptable"]
    assert empty["over_corrects"] is None and empty["length_gap"] is None
    kn = per_row("knowledge", ["x", "y"], ["s", "s"], [["x"], ["z"]], ["qa", "description"])
    assert kn[0]["qa_exact_match"] and "rouge_l" not in kn[0]
    assert kn[1]["rouge_l"] == 0.0 and "qa_f1" not in kn[1]


def test_length_gap_is_distance_to_the_closest_reference_length():
    # row 1: 4 tokens vs references of 4 and 6 -> 0; row 2: 1 token vs 3 -> 2; row 3 is empty:
    # counted by `empty`, left out of the length metrics (as of verbose)
    res = score_rows(
        "grammar",
        ["a b c d", "q", ""],
        ["a b c", "x y z", "p q"],
        [["a b c d", "a b c d e f"], ["x y w"], ["p r"]],
        with_ci=False,
    )
    assert res["length_gap"]["value"] == pytest.approx(1.0) and res["length_gap"]["n"] == 2
    assert res["output_words"]["value"] == pytest.approx(2.5) and res["output_words"]["n"] == 2
    assert res["length_ratio"]["value"] == pytest.approx(5 / 8)  # (4 + 1) / (5 + 3): row means
    assert res["reference_words"]["value"] == pytest.approx((5 + 3 + 2) / 3)  # every row: the data
    assert res["empty"]["value"] == pytest.approx(1 / 3) and res["verbose"]["n"] == 2


# --- registry and verdicts ------------------------------------------------------------------


def test_registry_covers_every_metric_with_unit_and_direction():
    names = set()
    names |= set(score_rows("grammar", G_OUT, G_SRC, G_REF, with_ci=False))
    names |= set(score_rows("paraphrase", G_OUT, G_SRC, G_REF, with_ci=False))
    names |= set(score_rows("knowledge", ["a", "b"], ["s", "s"], [["a"], ["b"]], ["qa", "description"], with_ci=False))
    assert names == set(METRICS)
    for name, spec in METRICS.items():
        assert isinstance(spec, MetricSpec) and spec.name == name and spec.description
        assert spec.kind in {"rate", "mean", "corpus"}
        assert spec.unit in {"points", "fraction", "words", "ratio"}
        assert spec.better in {"higher", "lower", "closer", "none"}
        assert (spec.target is not None) == (spec.better == "closer")
        assert spec.higher_is_better == (spec.better == "higher")
    assert {n for n, s in METRICS.items() if s.unit == "points"} == {"gleu", "bleu", "self_bleu", "ibleu"}
    assert METRICS["length_ratio"].better == "closer" and METRICS["length_gap"].better == "lower"
    assert METRICS["output_words"].better == "none" and METRICS["empty"].better == "lower"


def test_improvement_judges_length_by_closeness_to_the_reference():
    assert improvement("length_ratio", 1.44, 0.29) is False  # shorter, but much farther from 1
    assert improvement("length_ratio", 0.89, 1.00) is True
    assert improvement("length_ratio", 0.9, 1.1) is None  # as far on the other side
    assert improvement("output_words", 30.0, 12.0) is None  # descriptive: no verdict
    assert improvement("length_gap", 9.5, 2.0) is True
    assert improvement("gleu", 40.0, 45.0) is True and improvement("verbose", 0.2, 0.5) is False
    # with an interval: only a difference whose interval excludes 0 gets a verdict
    assert improvement("gleu", 40.0, 45.0, ci_low=-1.0, ci_high=9.0) is None
    assert improvement("gleu", 40.0, 45.0, ci_low=2.0, ci_high=8.0) is True
    assert improvement("length_ratio", 1.44, 0.29, ci_low=-1.2, ci_high=-1.1) is False
    assert improvement("gleu", None, 45.0) is None and improvement("gleu", 40.0, math.nan) is None
    with pytest.raises(KeyError):
        improvement("no_such_metric", 1.0, 2.0)


# --- empty output ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task,eval_file", [("grammar", None), ("paraphrase", "paws_eval.jsonl"), ("knowledge", "kilt_qa_eval.jsonl")]
)
def test_empty_output_never_beats_copying_the_input(task, eval_file):
    if eval_file is None:
        sources, references = _sample_jfleg()
        kinds = None
    else:
        sources, references, kinds = _eval_rows(eval_file)
    empty = [""] * len(sources)
    both = compare_rows(task, empty, sources, sources, references, kinds, n_resamples=2000)
    copy_scores, empty_scores, diff = both["baseline"], both["tuned"], both["diff"]
    assert empty_scores["empty"]["value"] == 1.0 and copy_scores["empty"]["value"] == 0.0
    for name in copy_scores:
        base, tuned = copy_scores[name]["value"], empty_scores.get(name, {}).get("value")
        d = diff.get(name, {})
        verdict = improvement(name, base, tuned, ci_low=d.get("ci_low"), ci_high=d.get("ci_high"))
        assert verdict is not True, (name, base, tuned, d)
    # form metrics are over non-empty outputs: none here, so no value that could look good
    for name in (
        "verbose",
        "output_words",
        "length_gap",
        "length_ratio",
        "over_corrects",
        "copy_rate",
        "self_bleu",
        "ibleu",
    ):
        assert name not in empty_scores
    if task == "grammar":
        for name in ("gleu", "exact_match", "acceptable", "empty"):
            assert improvement(name, copy_scores[name]["value"], empty_scores[name]["value"]) is False, name


# --- the audit's cases ------------------------------------------------------------------------


def test_perfect_correction_written_normally_scores_like_the_reference():
    sources, references = _jfleg()
    ref0 = [r[0] for r in references]
    normal = score_rows("grammar", [detokenize(r) for r in ref0], sources, references, with_ci=False)
    tokenized = score_rows("grammar", ref0, sources, references, with_ci=False)
    assert tokenized["gleu"]["value"] == pytest.approx(71.38, abs=0.01)
    assert normal["gleu"]["value"] == pytest.approx(tokenized["gleu"]["value"], abs=0.05)
    assert normal["exact_match"]["value"] >= 0.99 and normal["acceptable"]["value"] >= 0.99
    assert normal["over_corrects"]["value"] <= 0.01
    assert normal["length_ratio"]["value"] == pytest.approx(tokenized["length_ratio"]["value"], abs=0.01)


def _third_left_uncorrected(sources, references):
    perfect_normal = [detokenize(r[0]) for r in references]
    lazy_tokenized = [s if i % 3 == 0 else r[0] for i, (s, r) in enumerate(zip(sources, references, strict=False))]
    return perfect_normal, lazy_tokenized


@pytest.mark.parametrize("data", ["samples", "jfleg"])
def test_tokenization_never_decides_a_comparison(data):
    """Baseline corrects every row perfectly in normal text; tuned leaves a third uncorrected and
    writes JFLEG's tokens. No metric may call tuned better; the main ones must call it worse."""
    sources, references = _sample_jfleg() if data == "samples" else _jfleg()
    baseline, tuned = _third_left_uncorrected(sources, references)
    both = compare_rows("grammar", tuned, baseline, sources, references)
    base, tune, diff = both["baseline"], both["tuned"], both["diff"]
    verdicts = {
        name: improvement(name, base[name]["value"], tune[name]["value"], ci_low=d["ci_low"], ci_high=d["ci_high"])
        for name, d in diff.items()
    }
    assert True not in verdicts.values(), verdicts
    if data == "jfleg":
        for name in ("gleu", "exact_match", "acceptable"):
            assert verdicts[name] is False, (name, diff[name])


# --- intervals ------------------------------------------------------------------------------


def test_gleu_interval_uses_the_official_draws():
    sources, references = _sample_jfleg()
    outs = [s if i % 2 else r[0] for i, (s, r) in enumerate(zip(sources, references, strict=False))]
    res = score_rows("grammar", outs, sources, references, n_resamples=300)
    gleu = res["gleu"]
    assert gleu["value"] == pytest.approx(corpus_gleu(outs, sources, references).score)
    assert gleu["ci_low"] < gleu["value"] < gleu["ci_high"]
    diff = paired_diffs("grammar", outs, sources, sources, references, n_resamples=300)
    point = corpus_gleu(outs, sources, references).score - corpus_gleu(sources, sources, references).score
    assert diff["gleu"]["value"] == pytest.approx(point)
    assert diff["gleu"]["ci_low"] > 0


def test_paired_diffs_sign():
    srcs, refs = G_SRC * 10, G_REF * 10
    tuned = [r[0] for r in refs]  # perfect
    base = srcs  # copies the input
    d = paired_diffs("grammar", tuned, base, srcs, refs, n_resamples=2000)
    assert d["exact_match"]["value"] == pytest.approx(1.0)  # 1.0 - 0.0 (no source is a ref)
    assert d["gleu"]["value"] == pytest.approx(100.0 - corpus_gleu(base, srcs, refs).score)
    assert d["gleu"]["ci_low"] > 0
    assert d["verbose"]["value"] == 0.0
    rev = paired_diffs("grammar", base, tuned, srcs, refs, n_resamples=2000)
    assert rev["gleu"]["value"] == pytest.approx(-d["gleu"]["value"])
    assert rev["gleu"]["ci_high"] < 0


def test_compare_rows_equals_the_separate_calls():
    sources, references = _sample_jfleg()
    tuned = [r[0] for r in references]
    both = compare_rows("grammar", tuned, sources, sources, references, seed=4, n_resamples=500)
    assert both["baseline"] == score_rows("grammar", sources, sources, references, seed=4, n_resamples=500)
    assert both["tuned"] == score_rows("grammar", tuned, sources, references, seed=4, n_resamples=500)
    assert both["diff"] == paired_diffs("grammar", tuned, sources, sources, references, seed=4, n_resamples=500)
    assert both["tuned_rows"] == per_row("grammar", tuned, sources, references)


def test_real_jfleg_intervals_are_stable_across_seeds():
    sources, references = _jfleg()
    bounds = [score_rows("grammar", sources, sources, references, seed=seed)["gleu"] for seed in range(3)]
    for key in ("ci_low", "ci_high"):
        values = [b[key] for b in bounds]
        assert max(values) - min(values) <= 0.1, (key, values)  # points: 0.001 on GLEU's 0-1 scale
    assert all(b["value"] == pytest.approx(40.5430, abs=5e-5) for b in bounds)


def test_input_validation():
    with pytest.raises(ValueError):
        score_rows("summarise", ["a"], ["a"], [["a"]])
    with pytest.raises(ValueError):
        score_rows("grammar", ["a"], ["a", "b"], [["a"]])
    with pytest.raises(ValueError):
        score_rows("knowledge", ["a"], ["a"], [["a"]], ["essay"])
    with pytest.raises(ValueError):
        score_rows("grammar", [], [], [])
