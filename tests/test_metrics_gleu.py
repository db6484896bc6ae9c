"""GLEU exactly as the official JFLEG scorer, on the 0-100 scale (JFLEG publishes 40.54)."""

import math
import random

import numpy as np
import pytest
from data_helpers import jfleg_dir

from mprtune.metrics.gleu import CorpusGleu, corpus_gleu, gleu_from_stats, sentence_gleu_stats


def test_sentence_stats_hand_computed():
    # H = R = "he goes to school", S = "he go to school":
    # n=1: |H&R| = 4, D = {go} (S types absent from R), |H&D| = 0 -> 4 / den 4
    # n=2: 3/3, n=3: 2/2, n=4: 1/1; c = r = 4
    assert sentence_gleu_stats("he goes to school", "he go to school", "he goes to school") == (
        4,
        4,
        4,
        4,
        3,
        3,
        2,
        2,
        1,
        1,
    )
    # H = S = "she like cats", R = "she likes cats":
    # n=1: |H&R| = 2 (she, cats), D = {like}, |H&D| = 1 -> 1 / 3
    # n=2: |H&R| = 0, D = {she like, like cats}, |H&D| = 2 -> max(0, -2) = 0 / 2
    # n=3: 0 - 1 -> 0 / 1; n=4: 0 / max(0, 3-4+1) = 0
    assert sentence_gleu_stats("she like cats", "she like cats", "she likes cats") == (3, 3, 1, 3, 0, 2, 0, 1, 0, 0)


def test_source_difference_is_key_based_like_official_scorer():
    # S = H = "the the cat", R = "the cat". Unigrams: |H&R| = min(2,1) + 1 = 2.
    # Official D keeps only S types ABSENT from R: none ("the", "cat" are in R) -> num1 = 2.
    # (A multiset S - R = {the: 1} would give 2 - 1 = 1.)
    # Bigrams: |H&R| = 1 (the cat); D = {the the} -> |H&D| = 1 -> 0 / den 2.
    # Trigrams: R has none; D = {the the cat} -> 0 - 1 -> 0 / 1. 4-grams: 0 / 0.
    assert sentence_gleu_stats("the the cat", "the the cat", "the cat") == (3, 2, 2, 3, 0, 2, 0, 1, 0, 0)


def test_tokens_are_case_sensitive_split():
    # "He" != "he": unigram match only on "goes" -> 1/2; bigram none -> 0 (no D: S == R)
    assert sentence_gleu_stats("He goes", "he goes", "he goes")[2:6] == (1, 2, 0, 1)


def test_two_sentence_corpus_hand_computed():
    # Summing the two sentences above: c = r = 7, nums 5,3,2,1 over dens 7,5,3,1.
    # BP = exp(min(0, 1 - 7/7)) = 1; GLEU = (5/7 * 3/5 * 2/3 * 1/1) ** (1/4) = (2/7) ** 0.25
    res = corpus_gleu(
        ["he goes to school", "she like cats"],
        ["he go to school", "she like cats"],
        [["he goes to school"], ["she likes cats"]],
    )
    assert res.score == pytest.approx(100 * (2 / 7) ** 0.25, abs=1e-10)  # 73.1111... points
    assert res.std == pytest.approx(0.0, abs=1e-12)  # one reference: every draw identical


def test_brevity_penalty():
    # H = S = "a b c d e", R = "a b c d e f": all precisions 1 (5/5, 4/4, 3/3, 2/2),
    # c = 5 < r = 6 -> BP = exp(1 - 6/5) = exp(-0.2) = 0.8187307...
    res = corpus_gleu(["a b c d e"], ["a b c d e"], [["a b c d e f"]])
    assert res.score == pytest.approx(100 * math.exp(-0.2), abs=1e-10)


def test_any_zero_statistic_gives_zero():
    assert float(gleu_from_stats([3, 3, 1, 3, 0, 2, 0, 1, 0, 0])) == 0.0
    assert float(gleu_from_stats([4, 4, 4, 4, 3, 3, 2, 2, 1, 1])) == 1.0


def test_reference_draws_follow_official_seeding():
    # One sentence, two references: ref A = H (GLEU 1), ref B shares nothing (GLEU 0).
    # Iteration j picks A iff int(Random(j*101).random() * 2) == 0, so the mean is the
    # fraction p of such iterations and the std is sqrt(p (1 - p)).
    h = "w x y z"
    res = corpus_gleu([h], [h], [[h, "p q r s"]], iterations=500)
    p = sum(int(random.Random(j * 101).random() * 2) == 0 for j in range(500)) / 500
    assert 0.3 < p < 0.7  # the draw really varies
    assert res.score == pytest.approx(100 * p, abs=1e-10)
    assert res.std == pytest.approx(100 * math.sqrt(p * (1 - p)), abs=1e-10)


def test_varying_reference_counts_draw_within_each_row():
    # Row 1 has 3 identical references, row 0 one: every draw is equivalent to the
    # one-reference corpus. If padded (empty) slots of row 0 were ever drawn, c/r would
    # shrink and the score would differ.
    hyps, srcs = ["he goes to school", "she like cats"], ["he go to school", "she like cats"]
    single = corpus_gleu(hyps, srcs, [["he goes to school"], ["she likes cats"]])
    mixed = corpus_gleu(hyps, srcs, [["he goes to school"], ["she likes cats"] * 3])
    assert mixed.score == pytest.approx(single.score, abs=1e-10)


def test_resampled_rows_reweight_statistics():
    hyps, srcs = ["he goes to school", "she like cats"], ["he go to school", "she like cats"]
    refs = [["he goes to school"], ["she likes cats"]]
    cg = CorpusGleu(hyps, srcs, refs)
    assert cg.score(np.arange(2)).score == pytest.approx(cg.score().score)
    doubled = corpus_gleu(hyps * 2, srcs * 2, refs * 2).score
    assert cg.score(np.array([0, 1, 1, 0]), iterations=10).score == pytest.approx(doubled)
    # row 0 alone: H == R -> 100 points
    assert cg.score(np.array([0, 0])).score == pytest.approx(100.0)


def test_input_validation():
    with pytest.raises(ValueError):
        corpus_gleu(["a"], ["a", "b"], [["a"]])
    with pytest.raises(ValueError):
        corpus_gleu(["a"], ["a"], [[]])


def _load(split: str):
    d = jfleg_dir()
    if d is None:
        pytest.skip("real JFLEG not available (../shared/data/jfleg or $MPRTUNE_JFLEG_DIR)")
    src = (d / f"{split}.src").read_text().splitlines()
    refs = [(d / f"{split}.ref{k}").read_text().splitlines() for k in range(4)]
    return src, [list(r) for r in zip(*refs, strict=False)]


@pytest.mark.parametrize("split,published", [("test", 40.5430), ("dev", 38.2146)])
def test_jfleg_published_source_figures(split, published):
    # Published (JFLEG README): GLEU of the unedited source vs the 4 references (test 40.54).
    src, refs = _load(split)
    res = corpus_gleu(src, src, refs)
    assert res.score == pytest.approx(published, abs=5e-5)  # the scorer's 6 decimals on 0-1
    assert 0.0 < res.std < 5.0


@pytest.mark.parametrize("split,published", [("test", 40.5430), ("dev", 38.2146)])
def test_mprtune_scoring_keeps_the_published_figures(split, published):
    """score_rows tokenizes hypotheses like the references: the raw files must not move."""
    from mprtune.metrics import score_rows

    src, refs = _load(split)
    src = [line.strip() for line in src]
    refs = [[r.strip() for r in row] for row in refs]
    assert score_rows("grammar", src, src, refs, with_ci=False)["gleu"]["value"] == pytest.approx(published, abs=5e-5)


def test_vectorised_resamples_equal_rescoring_each_resample():
    from mprtune.metrics.bootstrap import resample_counts

    hyps = ["he goes to school", "she like cats", "a b c d e", "the the cat"]
    srcs = ["he go to school", "she like cats", "a b c d e", "the the cat"]
    refs = [
        ["he goes to school", "he went to school"],
        ["she likes cats"],
        ["a b c d e f", "a b c"],
        ["the cat", "a cat", "the cats"],
    ]
    cg = CorpusGleu(hyps, srcs, refs)
    counts = resample_counts(4, 25, seed=3)
    values = cg.resampled(counts)
    assert values.shape == (25,)
    for row_counts, value in zip(counts, values, strict=False):
        rows = np.repeat(np.arange(4), row_counts)
        assert value == pytest.approx(cg.score(rows).score, abs=1e-9)  # all 500 official draws
