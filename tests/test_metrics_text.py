import pytest

from mprtune.metrics.text import exact_match, extract_answer, is_verbose, normalize_ws, verbosity_reasons, word_count

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


@pytest.mark.parametrize(
    "out",
    [
        "Here is the corrected sentence: He went to school yesterday .",
        "Here's the fix: He went to school yesterday .",
        "Sure, He went to school yesterday .",
        "The corrected sentence is: He went to school yesterday .",
        "corrected: He went to school yesterday .",
        "Paraphrase: He went to school yesterday .",
        "ANSWER: He went to school yesterday .",
    ],
)
def test_preamble_positive(out):
    assert "preamble" in verbosity_reasons(out, SRC, REF)


def test_preamble_negative():
    # "Surely" is not "Sure"; a lead-in the reference itself starts with is content.
    assert "preamble" not in verbosity_reasons("Surely he went .", "Surely he go .", ["Surely he went ."])
    assert verbosity_reasons("Here is my house .", "Here is my hous .", ["Here is my house ."]) == []


@pytest.mark.parametrize(
    "out",
    [
        "He went to school yesterday . I changed 'go' to 'went'.",
        "He went to school yesterday . Explanation: past tense.",
        "He went to school yesterday . Note: tense.",
        "He went to school yesterday . I've corrected the verb.",
        "He went to school yesterday because of tense .",
    ],
)
def test_explanation_positive(out):
    assert "explanation" in verbosity_reasons(out, SRC, REF)


def test_explanation_because_allowed_when_in_source_or_reference():
    src = "I stayed home because I was sick ."
    assert verbosity_reasons("I stayed home because I was sick .", src, [src]) == []
    # present only in the reference: still legitimate
    assert (
        verbosity_reasons("He left because it rained .", "He left as it rain .", ["He left because it rained ."]) == []
    )


def test_quotes():
    assert "quotes" in verbosity_reasons('"He went to school yesterday ."', SRC, REF)
    assert "quotes" in verbosity_reasons("“He went to school yesterday .”", SRC, REF)
    # a reference that is itself quoted makes quotes legitimate
    assert verbosity_reasons('"Hi ."', '"hi ."', ['"Hi ."']) == []
    # quotes inside the sentence are not wrapping
    assert "quotes" not in verbosity_reasons('He said "go" .', 'He say "go" .', ['He said "go" .'])


def test_multiline():
    out = "He went to school yesterday .\nHe went to school ."
    assert "multiline" in verbosity_reasons(out, SRC, REF)
    # blank lines do not count as lines
    assert verbosity_reasons("\nHe went to school yesterday .\n\n", SRC, REF) == []
    # multi-line references allow multi-line output
    assert "multiline" not in verbosity_reasons("a\nb", "a b", ["a\nb"])


def test_too_long_boundary():
    # longest reference: 10 words -> limit max(1.5 * 10, 10 + 3) = 15 words
    refs = ["w " * 9, "w " * 10]
    assert "too_long" not in verbosity_reasons("a " * 15, "x", refs)  # 15 <= 15
    assert verbosity_reasons("a " * 16, "x", refs) == ["too_long"]  # 16 > 15
    # longest reference: 2 words -> limit max(3, 2 + 3) = 5 words: short answers get 3 words of slack
    assert "too_long" not in verbosity_reasons("a b c d e", "x", ["one two"])
    assert verbosity_reasons("a b c d e f", "x", ["one two"]) == ["too_long"]


@pytest.mark.parametrize("out,gold", [("The Beatles", "Beatles"), ("366 days", "366"), ("In the year 1066", "1066")])
def test_short_answers_with_a_few_more_words_are_not_verbose(out, gold):
    assert verbosity_reasons(out, "Who?", [gold]) == []


def test_word_counts_can_be_given():
    # grammar passes token counts of its comparison form (punctuation is a token there)
    assert verbosity_reasons("a b", "x", ["c"], output_words=9, reference_words=[1]) == ["too_long"]


def test_reasons_in_order_and_no_refs_skips_reference_rules():
    out = 'Sure! "x"\nI changed it because why not so here we go'
    assert verbosity_reasons(out, "x", ["x"]) == ["preamble", "explanation", "multiline", "too_long"]
    assert verbosity_reasons("a b c d e f g h", "x", []) == []


SEED_SRC = "New and new technology has been introduced to the society ."
SEED_REFS = [
    "New technology has been introduced to society .",
    "New technology has been introduced into the society .",
    "Newer and newer technology has been introduced into society .",
    "Newer and newer technology has been introduced to the society .",
]
ANSWER = "New technology has been introduced to society."


@pytest.mark.parametrize(
    "out",
    [
        ANSWER,
        f"  {ANSWER}\n",
        f'Sure! Here is the corrected sentence:\n\n"{ANSWER}"\n\nI removed "and new" because it repeats '
        f'the idea, and "the" is not needed before "society".',
        f"Here is the corrected sentence: {ANSWER} I removed the repeated words.",
        f"Corrected: {ANSWER}\nExplanation: the repetition is redundant.",
        f"Sure, {ANSWER}",
        f"“{ANSWER}”",
    ],
)
def test_extract_answer_strips_the_wrapper(out):
    assert extract_answer(out, SEED_SRC, SEED_REFS) == ANSWER


@pytest.mark.parametrize(
    "out",
    [
        "",
        "   \n ",
        "Sure! Here is the corrected sentence:",  # a preamble and nothing after it
        f"{ANSWER}\nNew technologies have been introduced to society.",  # two candidate answers
        "New technology has been introduced because society wanted it.",  # the explanation is inside
        "I'm sorry, as an AI I cannot help with that.\nPlease ask again.",
        "New technology has been introduced to society, and people all over the world now use it every "
        "day at home, at work and at school.",  # one line, but far too long to be the correction
    ],
)
def test_extract_answer_gives_none_when_no_single_answer_is_there(out):
    assert extract_answer(out, SEED_SRC, SEED_REFS) is None
