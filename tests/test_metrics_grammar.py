import pytest

from mprtune.metrics.grammar import acceptable, changed_words, over_corrects, word_edit_distance

SRC = "he go to school yesterday"
REFS = ["he went to school yesterday"]


def test_changed_words_hand_computed():
    # [a b c] -> [a x c d]: replace b->x (1) + insert d (1) = 2
    assert changed_words("a b c", "a x c d") == 2
    # delete 2 tokens
    assert changed_words("a b c d", "a d") == 2
    # replace 2 tokens by 3: max(2, 3) = 3
    assert changed_words("a b c d", "a x y z d") == 3
    assert changed_words(SRC, SRC) == 0
    assert changed_words(SRC, "he went to the school yesterday") == 2  # go->went, +the


def test_over_corrects_margin():
    # reference changes 1 word; output changes 4 (he go -> she went, school yesterday ->
    # college today): 4 > 1 + 2 -> True; with margin 3: 4 > 4 -> False
    out = "she went to college today"
    assert changed_words(SRC, out) == 4
    assert over_corrects(out, SRC, REFS)
    assert not over_corrects(out, SRC, REFS, margin=3)
    assert not over_corrects("he went to the school yesterday", SRC, REFS)  # 2 <= 3
    # the most-edited reference sets the bar: a 4-word reference edit allows 6
    assert not over_corrects(out, SRC, REFS + ["she went to college today"])


def test_word_edit_distance():
    assert word_edit_distance("a b c", "a c d") == 2  # delete b, insert d
    assert word_edit_distance("a b c", "a x c") == 1
    assert word_edit_distance("", "a b") == 2


def test_acceptable_rule():
    assert acceptable("he went to school yesterday", SRC, REFS)  # exact
    assert acceptable("he went to school yesterday .", SRC, REFS)  # 1 insertion away
    assert acceptable("he goes to school yesterday", SRC, REFS)  # 1 substitution away
    assert not acceptable(SRC + " now", SRC, REFS)  # go->went + now: 2 edits
    # 1 edit away but verbose (a "Sure" preamble) -> not acceptable
    assert not acceptable("Sure he went to school yesterday", SRC, REFS)


def test_over_corrects_needs_reference():
    with pytest.raises(ValueError):
        over_corrects("a", "a", [])
