"""The tokenization convention of every grammar and paraphrase comparison: Penn Treebank tokens.

Why: JFLEG (and PAWS-Wiki) are whitespace-tokenized in Penn Treebank (PTB) style
(``society .``, ``ca n't``, ```` rich ''``), while models write normal text (``society.``,
``can't``, ``"rich"``), and LLaMA-Factory's decoding (``clean_up_tokenization_spaces``) turns even
a model that emits `` .`` back into ``.``. The official JFLEG scorer compares whitespace tokens, so
scored raw, a perfect correction written normally loses (JFLEG test ref0 detokenized: GLEU 50.27
instead of 71.38, exact match 0 %).

The convention (one, used by GLEU, BLEU, self-BLEU, iBLEU and every grammar/paraphrase row label):

- A row's source and references are taken as they are: their whitespace tokens define the
  tokenization (JFLEG's, PAWS's, or plain text for QQP).
- The hypothesis is brought to the same tokens by :func:`comparison_tokens`: split into
  sentences by nltk's Punkt (default parameters, no model to download), each sentence tokenized
  by nltk's ``TreebankWordTokenizer`` (the PTB tokenizer: it splits off the sentence's final
  period, punctuation and contractions, and writes quotes as ```` / ''``), EXCEPT that a
  whitespace token of the hypothesis that occurs verbatim as a token of the row's source or
  references is kept whole.

  Why the exception: JFLEG is not exactly nltk's PTB. Measured on all 7,505 JFLEG lines
  (dev+test, .src and .ref0-3), nltk changes 134 lines when applied to already-tokenized text:
  a separated quote always follows a space, so nltk opens it (``"`` -> ```` 75 times, a closing
  ``''`` -> ```` 47), ``cannot`` -> ``can not`` (45), ``gonna`` -> ``gon na``, learner junk such
  as ``&raspsquo;``, ``heat(energy)``, ``this,but``. Tokenizing hypotheses with nltk alone moves
  the published figures of the unedited sources (test 40.5430 -> 40.4970, dev 38.2146 ->
  38.2162). With the exception, a hypothesis equal to the source or to a reference is a fixed
  point, so the official figures stay exact, and normal text is still split where the row's own
  text is split (``society.`` -> ``society .``, ``can't`` -> ``ca n't``, ``"rich."`` ->
  ```` rich . ''``). Round trip on JFLEG test: 3,733 of 3,735 lines detokenized and tokenized
  back this way give the line again (in the two others the annotator wrote ``etc .`` where the
  tokenizer keeps ``etc.``).

- Knowledge answers are not tokenized this way: they are compared after SQuAD normalisation
  (see :mod:`.knowledge`), which drops punctuation anyway.

Detokenization (what a model should learn to write, see :mod:`mprtune.data.jfleg`):
:func:`detokenize` is nltk's ``TreebankWordDetokenizer`` with two adjustments that keep it a
pure spacing change: standalone ``"`` tokens (JFLEG dev writes both quotes that way) are paired
into ```` / ''`` first, so the detokenizer can attach them to the right side; and ``can not`` is
not merged into ``cannot`` (learners and annotators write both; the detokenizer must not change
words). nltk is imported lazily (about 1 s): nothing here runs at `mprtune --help`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from nltk.tokenize.punkt import PunktSentenceTokenizer
    from nltk.tokenize.treebank import TreebankWordDetokenizer, TreebankWordTokenizer

_WORD = re.compile(r"\S+")
_QUOTES = re.compile(r"``|'{2}|\"")


@lru_cache(maxsize=1)
def _tokenizer() -> TreebankWordTokenizer:
    from nltk.tokenize.treebank import TreebankWordTokenizer

    return TreebankWordTokenizer()


@lru_cache(maxsize=1)
def _sentences() -> PunktSentenceTokenizer:
    # Punkt with its default parameters: no trained model (nothing to download), so it splits
    # after every "word." followed by a space; a kept token (below) protects the row's own
    # abbreviations ("etc.", "U.S.A.").
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer()


@lru_cache(maxsize=1)
def _detokenizer() -> TreebankWordDetokenizer:
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    class _SpacingOnlyDetokenizer(TreebankWordDetokenizer):
        # "can not" -> "cannot" changes what the writer wrote; every other rule only moves spaces.
        CONTRACTIONS2 = [
            rx for rx in TreebankWordDetokenizer.CONTRACTIONS2 if not rx.pattern.startswith(r"(?i)\b(can)")
        ]

    return _SpacingOnlyDetokenizer()


def ptb_tokens(text: str) -> list[str]:
    """nltk ``TreebankWordTokenizer`` tokens of ``text`` (no exception for known tokens)."""
    return _tokenizer().tokenize(text)


def vocabulary(*texts: str | Iterable[str]) -> frozenset[str]:
    """The whitespace tokens of the given texts (strings, or iterables of strings)."""
    words: set[str] = set()
    for item in texts:
        for text in [item] if isinstance(item, str) else item:
            words.update(text.split())
    return frozenset(words)


def _align(tokens: list[str], text: str) -> list[tuple[int, int]]:
    """Character spans of the Treebank ``tokens`` in ``text``: what nltk's ``span_tokenize``
    does (converted quotes mapped back to the quotes of the text, then ``align_tokens``),
    without tokenizing a second time."""
    from nltk.tokenize.util import align_tokens

    if '"' in text or "''" in text:
        raw = iter(m.group() for m in _QUOTES.finditer(text))
        tokens = [next(raw) if t in ('"', "``", "''") else t for t in tokens]
    return align_tokens(tokens, text)


def comparison_tokens(text: str, keep: Collection[str] = frozenset()) -> list[str]:
    """``text`` as PTB tokens, keeping whole every whitespace token that is in ``keep``.

    The text is split into sentences (nltk Punkt) and each sentence is PTB-tokenized as a
    whole (the tokenizer's rules depend on context: it splits off a sentence's final period
    only, and a quote opens after a space and closes elsewhere). Each whitespace token of
    ``text`` then contributes either itself (when in ``keep``) or the PTB tokens inside it.
    """
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    if all(w in keep for w, _, _ in words):
        return [w for w, _, _ in words]  # a copy of the row's own text: a fixed point
    tokenizer = _tokenizer()
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    for start, end in _sentences().span_tokenize(text):
        sentence = text[start:end]
        tokens = tokenizer.tokenize(sentence)
        pieces += tokens
        try:
            spans += [(start + a, start + b) for a, b in _align(tokens, sentence)]
        except ValueError:  # nltk could not align its tokens with the text: keep none whole
            return [t for s, e in _sentences().span_tokenize(text) for t in tokenizer.tokenize(text[s:e])]
    out: list[str] = []
    at = 0
    for word, start, end in words:
        while at < len(pieces) and spans[at][1] <= start:
            at += 1
        inside = []
        while at < len(pieces) and spans[at][0] < end:
            inside.append(pieces[at])
            at += 1
        out.extend([word] if word in keep else inside)
    return out


def as_references(text: str, source: str, references: Sequence[str]) -> str:
    """``text`` tokenized the way the row's source and references are (the convention above),
    joined with single spaces."""
    return " ".join(comparison_tokens(text, vocabulary(source, references)))


def detokenize(text: str) -> str:
    """PTB-tokenized ``text`` as normal text (``society .`` -> ``society.``, ``ca n't`` ->
    ``can't``, ```` rich . ''`` -> ``"rich."``); see the module docstring for the two
    adjustments to nltk's detokenizer."""
    tokens = text.split()
    opening = True
    for i, token in enumerate(tokens):
        if token == '"':
            tokens[i] = "``" if opening else "''"
            opening = not opening
    return _detokenizer().detokenize(tokens)
