import pytest

from mprtune.metrics.knowledge import lcs_length, normalize_answer, qa_exact_match, rouge_l, token_f1


@pytest.mark.parametrize(
    "raw,norm",
    [
        ("The  Eiffel Tower!", "eiffel tower"),
        ("an apple, a pear", "apple pear"),
        ("Theory of the Anarchy", "theory of anarchy"),  # "the" only as a whole word
        ("U.S.A.", "usa"),
        ("  ", ""),
    ],
)
def test_normalize_answer_squad(raw, norm):
    assert normalize_answer(raw) == norm


def test_qa_exact_match_max_over_golds():
    assert qa_exact_match("the Eiffel tower.", ["Louvre", "Eiffel Tower"])
    assert not qa_exact_match("Eiffel", ["Eiffel Tower"])
    assert not qa_exact_match("x", [])


def test_token_f1_hand_computed():
    # pred [big, red, dog], gold [red, dog, barked] (articles dropped): common 2,
    # P = 2/3, R = 2/3 -> F1 = 2/3
    assert token_f1("the big red dog", ["a red dog barked"]) == pytest.approx(2 / 3)
    # pred [city, of, lyon] vs [lyon]: P = 1/3, R = 1 -> F1 = 2*(1/3)/(4/3) = 0.5
    assert token_f1("The city of Lyon", ["Lyon"]) == pytest.approx(0.5)
    # max over golds: second gold matches exactly
    assert token_f1("Lyon", ["Paris", "lyon"]) == pytest.approx(1.0)
    # repeated tokens are clipped: pred [x, x], gold [x] -> common 1, P 1/2, R 1 -> 2/3
    assert token_f1("x x", ["x"]) == pytest.approx(2 / 3)
    assert token_f1("nothing", ["else"]) == 0.0
    assert token_f1("", ["else"]) == 0.0


def test_lcs_length():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # classic CLRS example
    assert lcs_length([], ["a"]) == 0


def test_rouge_l_hand_computed():
    # [police, kill, gunman] vs [police, killed, gunman]: LCS 2, P = R = 2/3 -> F 2/3
    assert rouge_l("police kill the gunman", ["police killed the gunman"]) == pytest.approx(2 / 3)
    # [police, killed, gunman] vs [gunman, killed, police]: LCS 1 -> F 1/3 (order matters,
    # unlike token F1 which would give 1.0)
    assert rouge_l("police killed the gunman", ["the gunman killed police"]) == pytest.approx(1 / 3)
    # max over references; LCS 4 of pred len 4, ref len 6: P 1, R 2/3 -> F = 0.8
    assert rouge_l("w x y z", ["q", "w v x y u z"]) == pytest.approx(0.8)
    assert rouge_l("a", ["b"]) == 0.0
