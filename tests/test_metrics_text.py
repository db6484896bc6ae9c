import pytest

from mprtune.metrics.text import (exact_match, is_verbose, normalize_ws, verbosity_reasons,
                                  word_count)

SRC = "He go to school yesterday ."
REF = ["He went to school yesterday ."]


def test_normalize_ws_and_word_count():
    assert normalize_ws("  a \t b\n\nc  ") == "a b c"
    assert word_count("  a \t b\n\nc  ") == 3
    assert word_count("   ") == 0


def test_exact_match_whitespace_only_and_any_reference():
    assert exact_match(" He went  to school\tyesterday . \n", REF)
    assert not exact_match("he went to school yesterday .", REF)  # case-sensitive
    assert not exact_match("He went to school yesterday", REF)  # punctuation matters
    assert exact_match("b", ["a", "b"])  # any reference
    assert not exact_match("c", ["a", "b"])
    assert not exact_match("a", [])


def test_clean_output_has_no_reasons():
    assert verbosity_reasons("He went to school yesterday .", SRC, REF) == []
    assert not is_verbose("He went to school yesterday .", SRC, REF)


@pytest.mark.parametrize("out", [
    "Here is the corrected sentence: He went to school yesterday .",
    "Here's the fix: He went to school yesterday .",
    "Sure, He went to school yesterday .",
    "The corrected sentence is: He went to school yesterday .",
    "corrected: He went to school yesterday .",
    "Paraphrase: He went to school yesterday .",
    "ANSWER: He went to school yesterday .",
])
def test_preamble_positive(out):
    assert "preamble" in verbosity_reasons(out, SRC, REF)


def test_preamble_negative():
    # "Surely" is not "Sure"; a lead-in the reference itself starts with is content.
    assert "preamble" not in verbosity_reasons("Surely he went .", "Surely he go .",
                                               ["Surely he went ."])
    assert verbosity_reasons("Here is my house .", "Here is my hous .",
                             ["Here is my house ."]) == []


@pytest.mark.parametrize("out", [
    "He went to school yesterday . I changed 'go' to 'went'.",
    "He went to school yesterday . Explanation: past tense.",
    "He went to school yesterday . Note: tense.",
    "He went to school yesterday . I've corrected the verb.",
    "He went to school yesterday because of tense .",
])
def test_explanation_positive(out):
    assert "explanation" in verbosity_reasons(out, SRC, REF)


def test_explanation_because_allowed_when_in_source_or_reference():
    src = "I stayed home because I was sick ."
    assert verbosity_reasons("I stayed home because I was sick .", src, [src]) == []
    # present only in the reference: still legitimate
    assert verbosity_reasons("He left because it rained .", "He left as it rain .",
                             ["He left because it rained ."]) == []


def test_quotes():
    assert "quotes" in verbosity_reasons('"He went to school yesterday ."', SRC, REF)
    assert "quotes" in verbosity_reasons("“He went to school yesterday .”", SRC, REF)
    # a reference that is itself quoted makes quotes legitimate
    assert verbosity_reasons('"Hi ."', '"hi ."', ['"Hi ."']) == []
    # quotes inside the sentence are not wrapping
    assert "quotes" not in verbosity_reasons('He said "go" .', "He say \"go\" .",
                                             ['He said "go" .'])


def test_multiline():
    out = "He went to school yesterday .\nHe went to school ."
    assert "multiline" in verbosity_reasons(out, SRC, REF)
    # blank lines do not count as lines
    assert verbosity_reasons("\nHe went to school yesterday .\n\n", SRC, REF) == []
    # multi-line references allow multi-line output
    assert "multiline" not in verbosity_reasons("a\nb", "a b", ["a\nb"])


def test_too_long_boundary():
    # longest reference: 4 words -> limit 1.5 * 4 = 6 words
    refs = ["one two three", "one two three four"]
    assert "too_long" not in verbosity_reasons("a b c d e f", "x", refs)  # 6 <= 6
    assert verbosity_reasons("a b c d e f g", "x", refs) == ["too_long"]  # 7 > 6


def test_reasons_in_order_and_no_refs_skips_reference_rules():
    out = 'Sure! "x"\nI changed it because why not'
    assert verbosity_reasons(out, "x", ["x"]) == ["preamble", "explanation", "multiline",
                                                  "too_long"]
    assert verbosity_reasons("a b c d e f g h", "x", []) == []
