import json

import numpy as np
import pytest
from data_helpers import SAMPLES

from mprtune.metrics.bootstrap import resample_counts
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
    assert value == pytest.approx(100 * 0.225**0.25, abs=1e-9)


def test_self_bleu_and_ibleu_hand_computed():
    # hyps vs sources [HYP1 (a copy), "w x y z" (no overlap)]:
    # 1-grams 6/10, 2-grams 5/8, 3-grams 4/6, 4-grams 3/4, BP 1
    # self-BLEU = 100 * (0.6 * 0.625 * 2/3 * 0.75) ** 0.25 = 100 * 0.1875 ** 0.25 = 65.8037
    sb = self_bleu([HYP1, "a b c d"], [HYP1, "w x y z"])
    assert sb == pytest.approx(100 * 0.1875**0.25, abs=1e-9)
    # iBLEU = 0.8 * 50 - 0.2 * 20 = 36 ; alpha 0.5: 0.5 * 50 - 0.5 * 20 = 15
    assert ibleu(50.0, 20.0) == pytest.approx(36.0)
    assert ibleu(50.0, 20.0, alpha=0.5) == pytest.approx(15.0)


def test_copy_rate():
    assert is_copy(" a  b ", "a b")
    assert not is_copy("A b", "a b")
    # a copy written with normal punctuation is a copy of a tokenized source
    assert is_copy('He said, "it\'s fine."', "He said , `` it 's fine . ''")
    assert is_copy("What's up?", "What's up?")  # plain-text sources stay as they are
    # rows: copy, copy (whitespace), not copy, not copy -> 2/4
    assert copy_rate(["a b", "c  d ", "e", "f g"], ["a b", "c d", "x", "f h"]) == 0.5
    with pytest.raises(ValueError):
        copy_rate([], [])


def _sacrebleu(hyps, refs):
    """sacrebleu's public corpus_score, reference streams padded with each row's first reference."""
    from sacrebleu.metrics import BLEU

    width = max(len(r) for r in refs)
    streams = [[r[k] if k < len(r) else r[0] for r in refs] for k in range(width)]
    return BLEU(force=True).corpus_score(list(hyps), streams).score


def test_corpus_bleu_matches_sacrebleu_on_rows_and_resamples():
    rows = [json.loads(line) for line in (SAMPLES / "paws_eval.jsonl").read_text().splitlines()]
    rows += [json.loads(line) for line in (SAMPLES / "qqp_eval.jsonl").read_text().splitlines()]
    hyps = [r["source"] for r in rows[::2]] + [r["references"][0] for r in rows[1::2]]
    hyps[3] = ""  # an empty output
    hyps[5] = "x"  # one token: no 2-, 3- or 4-grams
    refs = [r["references"] + ([r["source"]] if i % 3 == 0 else []) for i, r in enumerate(rows[::2] + rows[1::2])]
    refs[4] = refs[4] + [""]  # an empty reference line is a reference
    cb = CorpusBleu(hyps, refs)
    assert cb.score() == pytest.approx(_sacrebleu(hyps, refs), abs=1e-9)
    counts = resample_counts(len(hyps), 30, seed=1)
    for row_counts, value in zip(counts, cb.resampled(counts), strict=False):
        picked = np.repeat(np.arange(len(hyps)), row_counts)
        assert value == pytest.approx(_sacrebleu([hyps[i] for i in picked], [refs[i] for i in picked]), abs=1e-9)


def test_corpus_bleu_uses_no_private_sacrebleu_function(monkeypatch):
    from sacrebleu.metrics import BLEU

    for name in [n for n in vars(BLEU) if n.startswith("_") and not n.startswith("__")]:
        if callable(getattr(BLEU, name)):
            monkeypatch.setattr(BLEU, name, lambda *a, **k: pytest.fail("private sacrebleu API used"))
    assert CorpusBleu([HYP1], [[REF1]]).score() == pytest.approx(100 * (1 / 12) ** 0.25, abs=1e-9)


def test_bleu_requires_references():
    with pytest.raises(ValueError):
        bleu(["a"], [[]])
