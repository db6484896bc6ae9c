import pytest
from data_helpers import jfleg_dir

from mprtune.metrics import per_row, score_rows
from mprtune.metrics.grammar import acceptable, changed_words, over_corrects, unjustified_edits, word_edit_distance

SRC = "he go to school yesterday"
REFS = ["he went to school yesterday"]

# JFLEG test line 1 (test.src and test.ref0-3) and the seed's four outputs for it.
SEED_SRC = "New and new technology has been introduced to the society ."
SEED_REFS = [
    "New technology has been introduced to society .",
    "New technology has been introduced into the society .",
    "Newer and newer technology has been introduced into society .",
    "Newer and newer technology has been introduced to the society .",
]
SEED_OUTPUTS = {
    "chatty": 'Sure! Here is the corrected sentence:\n\n"New technology has been introduced to society."\n\n'
    'I removed "and new" because it repeats the idea, and "the" is not needed before "society".',
    "exact": "New technology has been introduced to society.",
    "acceptable": "Newer and newer technology has been introduced to society.",
    "plural": "New technologies have been introduced to society.",
}


def test_changed_words_hand_computed():
    # [a b c] -> [a x c d]: replace b->x (1) + insert d (1) = 2
    assert changed_words("a b c", "a x c d") == 2
    # delete 2 tokens
    assert changed_words("a b c d", "a d") == 2
    # replace 2 tokens by 3: max(2, 3) = 3
    assert changed_words("a b c d", "a x y z d") == 3
    assert changed_words(SRC, SRC) == 0
    assert changed_words(SRC, "he went to the school yesterday") == 2  # go->went, +the


def test_unjustified_edits_hand_computed():
    # Every reference changes "and new" and/or "the"; none touches "technology" or "has".
    # The plural rewrite changes technology->technologies and has->have: 2 edits no reference makes.
    plural = "New technologies have been introduced to society ."
    assert unjustified_edits(plural, SEED_SRC, SEED_REFS) == 2
    # "Newer and newer ... to society": New/new are changed by ref2/ref3, "the" dropped by ref0/ref2
    assert unjustified_edits("Newer and newer technology has been introduced to society .", SEED_SRC, SEED_REFS) == 0
    # an insertion: "very" before "New" (ref2/3 change "New", so the place is one a reference
    # edits) -> 0; "really" between "has" and "been" (no reference edits either word) -> 1
    assert unjustified_edits("very New technology has been introduced to society .", SEED_SRC, SEED_REFS) == 0
    assert unjustified_edits("New technology has really been introduced to society .", SEED_SRC, SEED_REFS) == 1
    assert unjustified_edits(SEED_SRC, SEED_SRC, SEED_REFS) == 0  # a copy edits nothing
    for ref in SEED_REFS:
        assert unjustified_edits(ref, SEED_SRC, SEED_REFS) == 0


def test_over_corrects_margin():
    plural = "New technologies have been introduced to society ."
    assert over_corrects(plural, SEED_SRC, SEED_REFS)  # 2 > 1
    assert not over_corrects(plural, SEED_SRC, SEED_REFS, margin=2)
    # the closest reference does not matter: ref0 alone justifies nothing of the plural rewrite either
    assert over_corrects(plural, SEED_SRC, SEED_REFS[:1])
    # deleting the sentence changes every word the references keep
    assert over_corrects("", SEED_SRC, SEED_REFS)


def test_seed_outputs_get_the_seed_labels():
    names = list(SEED_OUTPUTS)
    rows = dict(
        zip(names, per_row("grammar", list(SEED_OUTPUTS.values()), [SEED_SRC] * 4, [SEED_REFS] * 4), strict=False)
    )
    chatty = rows["chatty"]
    assert chatty["verbose"] and not chatty["exact"] and not chatty["acceptable"]
    assert chatty["answer"] == "New technology has been introduced to society."
    assert chatty["over_corrects"] is False  # the wrapper is not an over-correction; the answer is exact
    assert rows["exact"]["exact"] and rows["exact"]["acceptable"] and not rows["exact"]["verbose"]
    assert rows["exact"]["over_corrects"] is False
    assert rows["acceptable"]["acceptable"] and not rows["acceptable"]["exact"]
    assert rows["acceptable"]["over_corrects"] is False
    plural = rows["plural"]
    assert plural["over_corrects"] is True and not plural["acceptable"] and not plural["exact"]
    assert not plural["verbose"]


def test_unextractable_answers_are_left_out_of_over_corrections():
    essay = (
        "Technology is changing society.\nMany people think that new technology is good.\n"
        "In conclusion, technology has been introduced to the society."
    )
    res = score_rows("grammar", [essay, SEED_OUTPUTS["plural"]], [SEED_SRC] * 2, [SEED_REFS] * 2, with_ci=False)
    assert res["over_corrects"]["n"] == 1 and res["over_corrects"]["value"] == 1.0
    assert res["verbose"]["value"] == 0.5


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
    assert not acceptable("", "a", ["b"])  # one edit from a one-word reference, but empty


def test_over_corrects_needs_reference():
    with pytest.raises(ValueError):
        over_corrects("a", "a", [])


def _jfleg_test():
    folder = jfleg_dir()
    if folder is None:
        pytest.skip("real JFLEG not available (../shared/data/jfleg or $MPRTUNE_JFLEG_DIR)")
    read = lambda name: [" ".join(line.split()) for line in (folder / name).read_text().splitlines()]
    return read("test.src"), [list(r) for r in zip(*(read(f"test.ref{k}") for k in range(4)), strict=False)]


def test_real_jfleg_references_and_source_are_not_over_corrections():
    sources, references = _jfleg_test()
    for k in range(4):
        res = score_rows("grammar", [r[k] for r in references], sources, references, with_ci=False)
        assert res["over_corrects"]["value"] <= 0.005 and res["over_corrects"]["n"] == len(sources)
    copy = score_rows("grammar", sources, sources, references, with_ci=False)
    assert copy["over_corrects"]["value"] == 0.0
