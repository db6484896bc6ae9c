"""The tokenization convention: hypotheses become Penn Treebank tokens like JFLEG's references,
without ever re-tokenizing the row's own text (so the official figures stay exact)."""

from __future__ import annotations

import re

import pytest
from data_helpers import jfleg_dir

from mprtune.metrics.tokens import as_references, comparison_tokens, detokenize, ptb_tokens, vocabulary


def test_normal_text_is_split_as_jfleg_writes_it():
    assert (
        comparison_tokens("New technology has been introduced to society.")
        == "New technology has been introduced to society .".split()
    )
    assert comparison_tokens("I can't go, it's late!") == ["I", "ca", "n't", "go", ",", "it", "'s", "late", "!"]
    assert comparison_tokens('They are "rich."') == ["They", "are", "``", "rich", ".", "''"]


def test_each_sentence_loses_its_period():
    # a run-on split in two, as annotators do ("car . They"): both periods become tokens
    assert comparison_tokens("I went home. It was late.") == "I went home . It was late .".split()


def test_tokens_of_the_row_are_kept_whole():
    # nltk splits "cannot"; JFLEG writes it whole: a token the row already has is left alone
    assert ptb_tokens("I cannot go.") == ["I", "can", "not", "go", "."]
    assert comparison_tokens("I cannot go.", keep={"cannot"}) == ["I", "cannot", "go", "."]
    assert comparison_tokens("heat(energy) is lost", keep={"heat(energy)"}) == ["heat(energy)", "is", "lost"]
    assert comparison_tokens("heat(energy) is lost") == ["heat", "(", "energy", ")", "is", "lost"]
    assert as_references("I cannot go.", "I cannot went .", ["I cannot go ."]) == "I cannot go ."


def test_detokenize_is_a_spacing_change():
    assert (
        detokenize("New technology has been introduced to society .")
        == "New technology has been introduced to society."
    )
    assert detokenize("I ca n't go , it 's late .") == "I can't go, it's late."
    assert detokenize("they are `` rich . ''") == 'they are "rich."'
    # JFLEG dev writes both quotes as a separate ": they are paired before detokenizing
    assert detokenize('Or , " is this the right thing to do ? "') == 'Or, "is this the right thing to do?"'
    assert detokenize("I can not go .") == "I can not go."  # never merged into "cannot"


def _jfleg_rows(split: str):
    folder = jfleg_dir()
    if folder is None:
        pytest.skip("real JFLEG not available (../shared/data/jfleg or $MPRTUNE_JFLEG_DIR)")
    read = lambda name: [" ".join(line.split()) for line in (folder / name).read_text().splitlines()]
    sources = read(f"{split}.src")
    references = [list(r) for r in zip(*(read(f"{split}.ref{k}") for k in range(4)), strict=False)]
    return sources, references


@pytest.mark.parametrize("split", ["test", "dev"])
def test_real_jfleg_lines_are_fixed_points(split):
    sources, references = _jfleg_rows(split)
    lines = [(line, i) for i, s in enumerate(sources) for line in [s, *references[i]]]
    unchanged_by_nltk = sum(" ".join(ptb_tokens(line)) == line for line, _ in lines)
    assert unchanged_by_nltk < len(lines)  # nltk alone re-tokenizes some JFLEG lines ("cannot", '"')
    assert all(as_references(line, sources[i], references[i]) == line for line, i in lines)


@pytest.mark.parametrize("split,share", [("test", 0.995), ("dev", 0.98)])
def test_real_jfleg_round_trip(split, share):
    """Detokenized JFLEG written back as the references are tokenized gives the line back (dev
    loses its separated " quotes, which normal text writes as `` ''), and reads as normal text."""
    sources, references = _jfleg_rows(split)
    lines = [(line, i) for i, s in enumerate(sources) for line in [s, *references[i]]]
    normal = [detokenize(line) for line, _ in lines]
    back = sum(
        as_references(text, sources[i], references[i]) == line for text, (line, i) in zip(normal, lines, strict=False)
    )
    assert back >= share * len(lines)
    for mark in (r" \.(?!\.)", " ,", " n't", " 's", "``"):  # " ..." (an ellipsis) is normal text
        assert sum(bool(re.search(mark, text)) for text in normal) <= 0.002 * len(lines), mark
    assert all(not text.startswith(" ") and "  " not in text for text in normal)


def test_vocabulary():
    assert vocabulary("a b", ["b c", "d"]) == frozenset("abcd")
