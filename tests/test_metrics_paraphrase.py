import numpy as np
import pytest

from mprtune.metrics.paraphrase import CorpusBleu, bleu, copy_rate, ibleu, is_copy, self_bleu

HYP1, REF1 = "the cat sat on the mat", "the cat sat on a mat"


def test_bleu_single_sentence_hand_computed():
    # matches / totals: 1-grams 5/6 ("the" clipped to 1), 2-grams 3/5, 3-grams 2/4,
    # 4-grams 1/3; equal lengths -> BP = 1.
    # BLEU = 100 * (5/6 * 3/5 * 2/4 * 1/3) ** (1/4) = 100 * (1/12) ** 0.25 = 53.7285
    assert bleu([HYP1], [[REF1]]) == pytest.approx(100 * (1 / 12) ** 0.25, abs=1e-9)


def test_bleu_identical_is_100_and_varying_reference_counts():
    assert bleu(["a b c d"], [["a b c d"]]) == pytest.approx(100.0)
    # Row 1 has 1 reference, row 2 has 2 (padding row 1 with its first reference).
    # Row 2 matches its first reference fully. Sums: 1-grams (5+4)/(6+4) = 9/10,
    # 2-grams (3+3)/(5+3) = 6/8, 3-grams (2+2)/(4+2) = 4/6, 4-grams (1+1)/(3+1) = 2/4;
    # sys_len 10 = ref_len 6 + 4 -> BP 1.  BLEU = 100 * 0.225 ** 0.25 = 68.8722
    value = bleu([HYP1, "a b c d"], [[REF1], ["a b c d", "w x y z"]])
    assert value == pytest.approx(100 * 0.225 ** 0.25, abs=1e-9)


def test_self_bleu_and_ibleu_hand_computed():
    # hyps vs sources [HYP1 (a copy), "w x y z" (no overlap)]:
    # 1-grams 6/10, 2-grams 5/8, 3-grams 4/6, 4-grams 3/4, BP 1
    # self-BLEU = 100 * (0.6 * 0.625 * 2/3 * 0.75) ** 0.25 = 100 * 0.1875 ** 0.25 = 65.8037
    sb = self_bleu([HYP1, "a b c d"], [HYP1, "w x y z"])
    assert sb == pytest.approx(100 * 0.1875 ** 0.25, abs=1e-9)
    # iBLEU = 0.8 * 50 - 0.2 * 20 = 36 ; alpha 0.5: 0.5 * 50 - 0.5 * 20 = 15
    assert ibleu(50.0, 20.0) == pytest.approx(36.0)
    assert ibleu(50.0, 20.0, alpha=0.5) == pytest.approx(15.0)


def test_copy_rate():
    assert is_copy(" a  b ", "a b")
    assert not is_copy("A b", "a b")
    # rows: copy, copy (whitespace), not copy, not copy -> 2/4
    assert copy_rate(["a b", "c  d ", "e", "f g"], ["a b", "c d", "x", "f h"]) == 0.5
    with pytest.raises(ValueError):
        copy_rate([], [])


def test_corpus_bleu_stats_match_sacrebleu_on_resamples():
    hyps = [HYP1, "a b c d", "the dog ran home", "x y"]
    refs = [[REF1], ["a b c d", "w x y z"], ["a dog ran home quickly"], ["x y z"]]
    cb = CorpusBleu(hyps, refs)
    assert cb.score() == pytest.approx(bleu(hyps, refs), abs=1e-9)
    rows = np.array([2, 0, 2, 3])
    assert cb.score(rows) == pytest.approx(
        bleu([hyps[i] for i in rows], [refs[i] for i in rows]), abs=1e-9)


def test_bleu_requires_references():
    with pytest.raises(ValueError):
        bleu(["a"], [[]])
