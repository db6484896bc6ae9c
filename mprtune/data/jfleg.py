"""Grammar correction from JFLEG (Napoles et al. 2017; CC BY-NC-SA 4.0: never copied into the repo).

Sources:
- local folder (``--source PATH``): ``PATH/jfleg/`` or ``PATH`` itself holding ``dev.src``,
  ``dev.ref0..3``, ``test.src``, ``test.ref0..3`` (one sentence per line, aligned by line);
- Hugging Face ``jhu-clsp/jfleg``: split ``validation`` (= dev) and ``test``; columns
  ``sentence`` and ``corrections`` (list of 4).

Text: JFLEG is Penn-Treebank tokenized ("a reasonable sense .", "ca n't"); users and models write
normal text. So what the MODEL sees is detokenized (nltk's Treebank detokenizer,
:func:`mprtune.metrics.tokens.detokenize`: a spacing change only), and what the SCORER sees is
JFLEG's own text, unchanged, for the official GLEU (outputs are tokenized like the references at
scoring time, see :mod:`mprtune.metrics.tokens`). Lines are whitespace-stripped (every dev line
ends with a space).

Definitions:
- eval (jfleg_eval) = test: one row per sentence.
  ``instruction`` = prompt + the sentence detokenized (what the model is asked);
  ``output`` = the first reference detokenized (what LLaMA-Factory takes as the label: the text a
  perfect model would write);
  ``source`` = the sentence as in test.src and ``references`` = all its non-empty corrections as in
  test.ref0..3, in reference order (duplicates kept: GLEU draws among all four); these two are what
  the metrics score against. Real JFLEG: 747 rows x 4 references.
- train (jfleg_train) = dev: one row per (sentence, distinct correction), both detokenized
  (``instruction`` = prompt + sentence, ``output`` = correction): the tuned model learns to write
  normal text, as production users need. Corrections that are identical once detokenized, and
  identical (instruction, output) rows anywhere, are written once. A dev pair whose sentence or
  correction equals (case-folded, whitespace-collapsed, raw or detokenized) a test sentence or test
  reference is dropped and counted as ``held_out_overlap_pairs`` (0 on the real data).
- A blank last row (source and corrections empty: the HF splits end with one) is dropped; a blank
  row anywhere else, or a row whose corrections are all empty, is a bad row. Reference files with a
  different number of lines than their ``.src`` are a file error (always fatal).
- ids: ``jfleg-test-NNNN`` (line number), ``jfleg-dev-NNNN-K`` (line, reference index K).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from mprtune.data.common import (
    BuildContext,
    clean,
    norm_key,
)
from mprtune.data.sources import (
    Record,
    RowError,
    RowErrorAt,
    iter_hf,
    load_hf,
    require_file,
    text_lines,
)
from mprtune.errors import DataError
from mprtune.metrics.tokens import detokenize

HF_NAME = "jhu-clsp/jfleg"
HF_SPLITS = {"dev": "validation", "test": "test"}
N_REFS = 4


def local_records(folder: Path, split: str, display) -> Iterator[Record | RowErrorAt]:
    """Lines of `<split>.src` zipped with `<split>.ref0..3`; unequal lengths raise DataError.

    A line that is not UTF-8 in any of the five files makes that row a bad row naming the file.
    """
    names = [f"{split}.src"] + [f"{split}.ref{k}" for k in range(N_REFS)]
    paths = [require_file(folder / name, "JFLEG layout: dev/test .src and .ref0..3") for name in names]
    for number, lines in enumerate(itertools.zip_longest(*(text_lines(p) for p in paths)), 1):
        if any(line is None for line in lines):
            short = next(i for i, line in enumerate(lines) if line is None)
            raise DataError(
                f"{display(paths[short])}:{number}: reference files of unequal length "
                f"({names[short]} ends at line {number - 1}, other files go on)"
            )
        bad = next((i for i, (_, _, problem) in enumerate(lines) if problem), None)
        if bad is not None:
            yield RowErrorAt(f"{display(paths[bad])}:{number}", str(lines[bad][2]))
            continue
        texts = [text.rstrip("\r\n") for _, text, _ in lines]
        yield Record(f"{display(paths[0])}:{number}", {"sentence": texts[0], "corrections": texts[1:]})


def hf_records(split: str) -> Iterator[Record]:
    hf_split = HF_SPLITS[split]
    return iter_hf(load_hf(HF_NAME, None, hf_split), f"hf:{HF_NAME}[{hf_split}]")


def drop_blank_last(records: Iterable[Record | RowErrorAt]) -> Iterator[Record | RowErrorAt]:
    """Hold back a blank row; it is yielded (and then fails as empty) only when another row follows."""
    held: Record | None = None
    for record in records:
        if held is not None:
            yield held
            held = None
        if isinstance(record, Record) and _is_blank(record):
            held = record
            continue
        yield record


def _is_blank(record: Record) -> bool:
    sentence = record.fields.get("sentence")
    corrections = record.fields.get("corrections") or []
    return not (sentence or "").strip() and all(not (c or "").strip() for c in corrections)


def parse(record: Record) -> tuple[str, list[str]]:
    """(sentence, non-empty corrections in order); RowError when either is missing."""
    sentence = clean(record.fields.get("sentence"), "sentence")
    corrections = record.fields.get("corrections")
    if not isinstance(corrections, list):
        raise RowError(f"field 'corrections' must be a list, got {type(corrections).__name__}")
    refs = [c.strip() for c in corrections if isinstance(c, str) and c.strip()]
    if not refs:
        raise RowError("no non-empty correction")
    return sentence, refs


def build(ctx: BuildContext) -> None:
    """Write jfleg_eval (test) first, then jfleg_train (dev) minus rows touching a test sentence."""
    if ctx.source_root is not None:
        folder = ctx.corpus_dir("jfleg", "dev.src")
        records = {s: (lambda s=s: local_records(folder, s, ctx.display)) for s in ("dev", "test")}
        ctx.eval.report.source = ctx.display(folder / "test.src") + " + test.ref0..3"
        ctx.train.report.source = ctx.display(folder / "dev.src") + " + dev.ref0..3"
    else:
        records = {s: (lambda s=s: hf_records(s)) for s in ("dev", "test")}
        ctx.eval.report.source = f"hf:{HF_NAME}[{HF_SPLITS['test']}]"
        ctx.train.report.source = f"hf:{HF_NAME}[{HF_SPLITS['dev']}]"

    held_out: set[str] = set()
    for record, (sentence, refs) in ctx.feed(drop_blank_last(records["test"]()), ctx.eval, parse):
        number = record.where.rsplit(":", 1)[1]
        ctx.eval.add(
            {
                "id": f"jfleg-test-{int(number):04d}",
                "instruction": ctx.prompt + detokenize(sentence),
                "input": "",
                "output": detokenize(refs[0]),
                "source": sentence,
                "references": refs,
            }
        )
        held_out.update(_keys(sentence))
        for ref in refs:
            held_out.update(_keys(ref))

    for record, (sentence, refs) in ctx.feed(drop_blank_last(records["dev"]()), ctx.train, parse):
        line_number = int(record.where.rsplit(":", 1)[1])
        corrections = list(record.fields["corrections"])
        normal: dict[str, str] = {}  # detokenized correction -> its first raw form
        for ref in refs:
            normal.setdefault(detokenize(ref), ref)
        for text, ref in normal.items():
            if not held_out.isdisjoint(_keys(sentence)) or not held_out.isdisjoint(_keys(ref)):
                ctx.train.report.count("held_out_overlap_pairs")
                continue
            k = next(i for i, c in enumerate(corrections) if isinstance(c, str) and c.strip() == ref)
            ctx.train.add(
                {
                    "id": f"jfleg-dev-{line_number:04d}-{k}",
                    "instruction": ctx.prompt + detokenize(sentence),
                    "input": "",
                    "output": text,
                }
            )


def _keys(text: str) -> set[str]:
    """Overlap keys of a JFLEG line: raw and detokenized, case-folded, whitespace-collapsed."""
    return {norm_key(text), norm_key(detokenize(text))}
