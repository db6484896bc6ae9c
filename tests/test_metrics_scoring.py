import json

import pytest

from mprtune.metrics import METRICS, MetricSpec, paired_diffs, per_row, score_rows
from mprtune.metrics.gleu import corpus_gleu

G_OUT = ["he goes to school", "she like cats"]
G_SRC = ["he go to school", "she like cats"]
G_REF = [["he goes to school"], ["she likes cats"]]


def _values(res):
    return {k: v["value"] for k, v in res.items()}


def test_grammar_values_hand_computed():
    res = score_rows("grammar", G_OUT, G_SRC, G_REF, with_ci=False)
    assert set(res) == {"exact_match", "verbose", "output_words", "reference_words",
                        "length_ratio", "gleu", "acceptable", "over_corrects"}
    v = _values(res)
    assert v["exact_match"] == 0.5  # row 1 only
    assert v["verbose"] == 0.0
    assert v["output_words"] == 3.5  # (4 + 3) / 2
    assert v["reference_words"] == 3.5  # (4 + 3) / 2
    assert v["length_ratio"] == 1.0  # 7 / 7
    assert v["gleu"] == pytest.approx((2 / 7) ** 0.25)  # see test_metrics_gleu
    assert v["acceptable"] == 1.0  # row 1 exact, row 2 one word ("like") from its reference
    assert v["over_corrects"] == 0.0
    assert all(m["ci_low"] is None and m["ci_high"] is None and m["n"] == 2
               for m in res.values())


def test_ci_present_contains_value_and_is_json_serialisable():
    outs = G_OUT * 10
    res = score_rows("grammar", outs, G_SRC * 10, G_REF * 10, seed=1)
    for name, m in res.items():
        assert m["ci_low"] <= m["value"] + 1e-12 and m["value"] <= m["ci_high"] + 1e-12, name
    json.dumps(res)
    assert res == score_rows("grammar", outs, G_SRC * 10, G_REF * 10, seed=1)
    assert res["gleu"]["value"] == pytest.approx(
        corpus_gleu(outs, G_SRC * 10, G_REF * 10).score)


def test_paraphrase_values_hand_computed():
    outs = ["the cat sat on the mat", "a b c d"]
    srcs = ["the cat sat on the mat", "w x y z"]
    refs = [["the cat sat on a mat"], ["a b c d", "w x y z"]]
    v = _values(score_rows("paraphrase", outs, srcs, refs, with_ci=False))
    bleu = 100 * 0.225 ** 0.25  # 68.8722, hand-computed in test_metrics_paraphrase
    self_bleu = 100 * 0.1875 ** 0.25  # 65.8037
    assert v["bleu"] == pytest.approx(bleu)
    assert v["self_bleu"] == pytest.approx(self_bleu)
    assert v["ibleu"] == pytest.approx(0.8 * bleu - 0.2 * self_bleu)  # 41.9369
    assert v["copy_rate"] == 0.5
    assert v["exact_match"] == 0.5
    assert "gleu" not in v and "qa_f1" not in v


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
    assert v["verbose"] == pytest.approx(1 / 3)  # "The city of Lyon": 4 words > 1.5 * 1
    only_qa = score_rows("knowledge", outs[:2], ["q1", "q2"], refs[:2], ["qa", "qa"],
                         with_ci=False)
    assert "rouge_l" not in only_qa and "qa_f1" in only_qa


def test_per_row_tags():
    rows = per_row("grammar", ["Sure! he goes to school", "she like cats"], G_SRC, G_REF)
    assert rows[0]["verbose"] and rows[0]["verbose_reasons"] == ["preamble"]
    assert rows[0]["length_words"] == 5 and not rows[0]["exact"]
    assert rows[1]["acceptable"] and rows[1]["changed_words"] == 0
    assert not rows[1]["over_corrects"]
    kn = per_row("knowledge", ["x", "y"], ["s", "s"], [["x"], ["z"]], ["qa", "description"])
    assert kn[0]["qa_exact_match"] and "rouge_l" not in kn[0]
    assert kn[1]["rouge_l"] == 0.0 and "qa_f1" not in kn[1]


def test_paired_diffs_sign():
    srcs, refs = G_SRC * 10, G_REF * 10
    tuned = [r[0] for r in refs]  # perfect
    base = srcs  # copies the input
    d = paired_diffs("grammar", tuned, base, srcs, refs)
    assert d["exact_match"]["value"] == pytest.approx(1.0)  # 1.0 - 0.0 (no source is a ref)
    assert d["gleu"]["value"] == pytest.approx(1.0 - corpus_gleu(base, srcs, refs).score)
    assert d["gleu"]["ci_low"] > 0
    assert d["verbose"]["value"] == 0.0
    rev = paired_diffs("grammar", base, tuned, srcs, refs)
    assert rev["gleu"]["value"] == pytest.approx(-d["gleu"]["value"])
    assert rev["gleu"]["ci_high"] < 0


def test_registry_covers_every_metric_and_kinds_are_consistent():
    names = set()
    names |= set(score_rows("grammar", G_OUT, G_SRC, G_REF, with_ci=False))
    names |= set(score_rows("paraphrase", G_OUT, G_SRC, G_REF, with_ci=False))
    res = score_rows("knowledge", ["a", "b"], ["s", "s"], [["a"], ["b"]], ["qa", "description"],
                     with_ci=False)
    names |= set(res)
    assert names == set(METRICS)
    for name, spec in METRICS.items():
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert spec.kind in {"rate", "mean", "corpus"} and spec.description
    assert not METRICS["verbose"].higher_is_better and METRICS["gleu"].higher_is_better


def test_input_validation():
    with pytest.raises(ValueError):
        score_rows("summarise", ["a"], ["a"], [["a"]])
    with pytest.raises(ValueError):
        score_rows("grammar", ["a"], ["a", "b"], [["a"]])
    with pytest.raises(ValueError):
        score_rows("knowledge", ["a"], ["a"], [["a"]], ["essay"])
    with pytest.raises(ValueError):
        score_rows("grammar", [], [], [])
