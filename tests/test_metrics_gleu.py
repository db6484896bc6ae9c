import math
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from mprtune.metrics.gleu import CorpusGleu, corpus_gleu, gleu_from_stats, sentence_gleu_stats


def test_sentence_stats_hand_computed():
    # H = R = "he goes to school", S = "he go to school":
    # n=1: |H&R| = 4, D = {go} (S types absent from R), |H&D| = 0 -> 4 / den 4
    # n=2: 3/3, n=3: 2/2, n=4: 1/1; c = r = 4
    assert sentence_gleu_stats("he goes to school", "he go to school",
                               "he goes to school") == (4, 4, 4, 4, 3, 3, 2, 2, 1, 1)
    # H = S = "she like cats", R = "she likes cats":
    # n=1: |H&R| = 2 (she, cats), D = {like}, |H&D| = 1 -> 1 / 3
    # n=2: |H&R| = 0, D = {she like, like cats}, |H&D| = 2 -> max(0, -2) = 0 / 2
    # n=3: 0 - 1 -> 0 / 1; n=4: 0 / max(0, 3-4+1) = 0
    assert sentence_gleu_stats("she like cats", "she like cats",
                               "she likes cats") == (3, 3, 1, 3, 0, 2, 0, 1, 0, 0)


def test_source_difference_is_key_based_like_official_scorer():
    # S = H = "the the cat", R = "the cat". Unigrams: |H&R| = min(2,1) + 1 = 2.
    # Official D keeps only S types ABSENT from R: none ("the", "cat" are in R) -> num1 = 2.
    # (A multiset S - R = {the: 1} would give 2 - 1 = 1.)
    # Bigrams: |H&R| = 1 (the cat); D = {the the} -> |H&D| = 1 -> 0 / den 2.
    # Trigrams: R has none; D = {the the cat} -> 0 - 1 -> 0 / 1. 4-grams: 0 / 0.
    assert sentence_gleu_stats("the the cat", "the the cat",
                               "the cat") == (3, 2, 2, 3, 0, 2, 0, 1, 0, 0)


def test_tokens_are_case_sensitive_split():
    # "He" != "he": unigram match only on "goes" -> 1/2; bigram none -> 0 (no D: S == R)
    assert sentence_gleu_stats("He goes", "he goes", "he goes")[2:6] == (1, 2, 0, 1)


def test_two_sentence_corpus_hand_computed():
    # Summing the two sentences above: c = r = 7, nums 5,3,2,1 over dens 7,5,3,1.
    # BP = exp(min(0, 1 - 7/7)) = 1; GLEU = (5/7 * 3/5 * 2/3 * 1/1) ** (1/4) = (2/7) ** 0.25
    res = corpus_gleu(["he goes to school", "she like cats"],
                      ["he go to school", "she like cats"],
                      [["he goes to school"], ["she likes cats"]])
    assert res.score == pytest.approx((2 / 7) ** 0.25, abs=1e-12)  # 0.731111...
    assert res.std == pytest.approx(0.0, abs=1e-12)  # one reference: every draw identical


def test_brevity_penalty():
    # H = S = "a b c d e", R = "a b c d e f": all precisions 1 (5/5, 4/4, 3/3, 2/2),
    # c = 5 < r = 6 -> BP = exp(1 - 6/5) = exp(-0.2) = 0.8187307...
    res = corpus_gleu(["a b c d e"], ["a b c d e"], [["a b c d e f"]])
    assert res.score == pytest.approx(math.exp(-0.2), abs=1e-12)


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
    assert res.score == pytest.approx(p, abs=1e-12)
    assert res.std == pytest.approx(math.sqrt(p * (1 - p)), abs=1e-12)


def test_varying_reference_counts_draw_within_each_row():
    # Row 1 has 3 identical references, row 0 one: every draw is equivalent to the
    # one-reference corpus. If padded (empty) slots of row 0 were ever drawn, c/r would
    # shrink and the score would differ.
    hyps, srcs = ["he goes to school", "she like cats"], ["he go to school", "she like cats"]
    single = corpus_gleu(hyps, srcs, [["he goes to school"], ["she likes cats"]])
    mixed = corpus_gleu(hyps, srcs, [["he goes to school"], ["she likes cats"] * 3])
    assert mixed.score == pytest.approx(single.score, abs=1e-12)


def test_resampled_rows_reweight_statistics():
    hyps, srcs = ["he goes to school", "she like cats"], ["he go to school", "she like cats"]
    refs = [["he goes to school"], ["she likes cats"]]
    cg = CorpusGleu(hyps, srcs, refs)
    assert cg.score(np.arange(2)).score == pytest.approx(cg.score().score)
    doubled = corpus_gleu(hyps * 2, srcs * 2, refs * 2).score
    assert cg.score(np.array([0, 1, 1, 0]), iterations=10).score == pytest.approx(doubled)
    # row 0 alone: H == R -> 1.0
    assert cg.score(np.array([0, 0])).score == pytest.approx(1.0)


def test_input_validation():
    with pytest.raises(ValueError):
        corpus_gleu(["a"], ["a", "b"], [["a"]])
    with pytest.raises(ValueError):
        corpus_gleu(["a"], ["a"], [[]])


def _jfleg_dir() -> Path:
    env = os.environ.get("MPRTUNE_JFLEG_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared/data/jfleg"


def _load(split: str):
    d = _jfleg_dir()
    if not (d / f"{split}.src").is_file():
        pytest.skip(f"JFLEG data not found in {d} (set MPRTUNE_JFLEG_DIR)")
    src = (d / f"{split}.src").read_text().splitlines()
    refs = [(d / f"{split}.ref{k}").read_text().splitlines() for k in range(4)]
    return src, [list(r) for r in zip(*refs)]


@pytest.mark.parametrize("split,published", [("test", 0.405430), ("dev", 0.382146)])
def test_jfleg_published_source_figures(split, published):
    # Published (JFLEG README): GLEU of the unedited source vs the 4 references.
    src, refs = _load(split)
    start = time.perf_counter()
    res = corpus_gleu(src, src, refs)
    elapsed = time.perf_counter() - start
    assert round(res.score, 4) == round(published, 4)
    assert res.score == pytest.approx(published, abs=5e-7)  # all 6 printed decimals
    assert 0.0 < res.std < 0.05
    assert elapsed < 2.0
