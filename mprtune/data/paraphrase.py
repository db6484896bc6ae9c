"""Paraphrase pairs from PAWS (labeled_final) and QQP: positives / duplicates only.

Sources (``--source PATH``; a corpus folder may also be PATH itself):
- PAWS: ``PATH/paws/train.tsv`` and ``test.tsv`` (labeled_final: id, sentence1, sentence2, label);
  dev.tsv is not used. Hugging Face: ``google-research-datasets/paws`` config ``labeled_final``,
  splits train / test.
- QQP, GLUE layout: ``PATH/qqp/train.tsv`` and ``dev.tsv`` (id, qid1, qid2, question1, question2,
  is_duplicate). Quora layout: ``PATH/qqp/quora_duplicate_questions.tsv`` (same columns, one file,
  CSV-quoted fields that may hold newlines); its held-out eval rows are those whose numeric id ends
  in 0 (10 %, the size of GLUE's dev). Hugging Face: ``nyu-mll/glue`` config ``qqp``, splits
  train / validation (columns question1, question2, label, idx).
TSVs are read with ``csv.QUOTE_NONE`` line by line (bounded memory); for QQP a field that is one
complete CSV-quoted string is unquoted (Quora layout), a GLUE-layout field keeps its quotes.

Definitions:
- A pair is used iff its label is 1 (a bad label, anything but 0/1, is a bad row). Pairs whose two
  sides are equal (case-folded, whitespace-collapsed) teach copying: skipped, ``identical_pairs``.
- Directions: paraphrase is symmetric, so every training pair gives TWO rows (s1 -> s2, id suffix
  ``-ab``; s2 -> s1, ``-ba``). Evaluation uses ONE direction (sentence1 -> sentence2); eval rows are
  grouped by source sentence: ``references`` = every distinct sentence2 paired with it, in order.
- Hold-out (per corpus): eval = PAWS test / QQP dev (or Quora id % 10 == 0). A training pair that
  has any eval sentence (either side of any eval pair) on either side is dropped and counted in
  ``held_out_overlap_pairs``, so no eval source or reference appears in any training row.
- ids: ``paws-train-<id>-ab``, ``qqp-train-<id>-ba``, ``paws-eval-<id>`` (first pair of the group).
- Tokenization: PAWS sentences are PTB-tokenized (``Released in 1998 , the film``). As for JFLEG,
  what the model reads and writes (instruction, output) is detokenized, so the tuned model writes
  normal text; eval ``source`` and ``references`` stay as published, and the scorer tokenizes the
  model's output like them (mprtune.metrics.tokens). QQP is normal text and is kept as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mprtune.data.common import (
    BuildContext,
    DatasetWriter,
    clean,
    label01,
    norm_key,
)
from mprtune.data.sources import (
    Record,
    RowError,
    RowErrorAt,
    iter_hf,
    iter_tsv,
    load_hf,
    require_file,
)
from mprtune.errors import show
from mprtune.metrics.tokens import detokenize

PAWS_HF = ("google-research-datasets/paws", "labeled_final")
QQP_HF = ("nyu-mll/glue", "qqp")
QUORA_FILE = "quora_duplicate_questions.tsv"
QUORA_EVAL_MOD = 10  # Quora layout: id % 10 == 0 is held out
QQP_COLUMNS = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
PAWS_COLUMNS = ("id", "sentence1", "sentence2", "label")


@dataclass(frozen=True)
class Pair:
    id: str
    first: str
    second: str


@dataclass(frozen=True)
class Layout:
    """Column names of one corpus and how to read its train and eval records."""

    corpus: str  # paws | qqp
    text1: str
    text2: str
    label: str
    id_column: str
    train: Callable[[], Iterator[Record | RowErrorAt]]
    eval: Callable[[], Iterator[Record | RowErrorAt]]
    train_source: str
    eval_source: str
    eval_filter: Callable[[Record], bool] | None = None  # one-file layouts: which rows are eval
    tokenized: bool = False  # PTB-tokenized text (PAWS): the model sees it detokenized, the scorer raw

    def shown(self, text: str) -> str:
        """Text as the model reads and writes it (normal spacing, like production input)."""
        return detokenize(text) if self.tokenized else text


def parser(layout: Layout) -> Callable[[Record], Pair | None]:
    def parse(record: Record) -> Pair | None:
        if layout.label not in record.fields:
            raise RowError(f"missing field {layout.label!r}")
        if label01(record.fields[layout.label], layout.label) != 1:
            return None
        pair_id = str(record.fields.get(layout.id_column, "")).strip()
        if not pair_id:
            raise RowError(f"missing field {layout.id_column!r}")
        return Pair(
            pair_id,
            clean(record.fields.get(layout.text1), layout.text1),
            clean(record.fields.get(layout.text2), layout.text2),
        )

    return parse


def _quora_is_eval(record: Record) -> bool:
    value = str(record.fields.get("id", "")).strip()
    if not value.isdigit():
        raise RowError(f"id must be a non-negative integer in the Quora layout, got {show(value)}")
    return int(value) % QUORA_EVAL_MOD == 0


def paws_layout(ctx: BuildContext) -> Layout:
    if ctx.source_root is None:
        name, config = PAWS_HF
        return Layout(
            "paws",
            "sentence1",
            "sentence2",
            "label",
            "id",
            lambda: iter_hf(load_hf(name, config, "train"), f"hf:{name}[train]"),
            lambda: iter_hf(load_hf(name, config, "test"), f"hf:{name}[test]"),
            f"hf:{name}/{config}[train]",
            f"hf:{name}/{config}[test]",
            tokenized=True,
        )
    folder = ctx.corpus_dir("paws", "train.tsv")
    train, test = (require_file(folder / f, "PAWS labeled_final layout") for f in ("train.tsv", "test.tsv"))
    return Layout(
        "paws",
        "sentence1",
        "sentence2",
        "label",
        "id",
        lambda: iter_tsv(train, ctx.display(train), PAWS_COLUMNS),
        lambda: iter_tsv(test, ctx.display(test), PAWS_COLUMNS),
        ctx.display(train),
        ctx.display(test),
        tokenized=True,
    )


def qqp_layout(ctx: BuildContext) -> Layout:
    if ctx.source_root is None:
        name, config = QQP_HF
        return Layout(
            "qqp",
            "question1",
            "question2",
            "label",
            "idx",
            lambda: iter_hf(load_hf(name, config, "train"), f"hf:{name}[train]"),
            lambda: iter_hf(load_hf(name, config, "validation"), f"hf:{name}[validation]"),
            f"hf:{name}/{config}[train]",
            f"hf:{name}/{config}[validation]",
        )
    folder = _qqp_folder(ctx)
    quora = folder / QUORA_FILE
    if quora.is_file():
        label = ctx.display(quora)
        return Layout(
            "qqp",
            "question1",
            "question2",
            "is_duplicate",
            "id",
            lambda: iter_tsv(quora, label, QQP_COLUMNS, unquote=True),
            lambda: iter_tsv(quora, label, QQP_COLUMNS, unquote=True),
            f"{label} (id % {QUORA_EVAL_MOD} != 0)",
            f"{label} (id % {QUORA_EVAL_MOD} == 0)",
            eval_filter=_quora_is_eval,
        )
    train, dev = (
        require_file(folder / f, f"QQP layout: GLUE train.tsv + dev.tsv, or {QUORA_FILE}")
        for f in ("train.tsv", "dev.tsv")
    )
    return Layout(
        "qqp",
        "question1",
        "question2",
        "is_duplicate",
        "id",
        lambda: iter_tsv(train, ctx.display(train), QQP_COLUMNS, unquote=True),
        lambda: iter_tsv(dev, ctx.display(dev), QQP_COLUMNS, unquote=True),
        ctx.display(train),
        ctx.display(dev),
    )


def _qqp_folder(ctx: BuildContext) -> Path:
    assert ctx.source_root is not None
    if (ctx.source_root / "qqp").is_dir() or not (ctx.source_root / QUORA_FILE).is_file():
        return ctx.corpus_dir("qqp", "train.tsv")
    return ctx.source_root


def _split(
    records: Iterator[Record | RowErrorAt],
    is_eval: Callable[[Record], bool] | None,
    want_eval: bool,
    writer: DatasetWriter,
) -> Iterator[Record | RowErrorAt]:
    """One-file layouts: keep the eval (or the train) rows; an unreadable id is a bad row."""
    for record in records:
        if is_eval is None:
            yield record
            continue
        if isinstance(record, RowErrorAt):
            if not want_eval:  # split unknown: reported once, on the training pass
                yield record
            continue
        try:
            if is_eval(record) == want_eval:
                yield record
        except RowError as exc:
            if want_eval:  # reported once, on the training pass
                continue
            writer.bad(record.where, str(exc))


def build_layout(ctx: BuildContext, layout: Layout) -> None:
    """Eval first (grouped by source, one direction), then training rows both ways minus held-out ones."""
    ctx.train.report.source, ctx.eval.report.source = layout.train_source, layout.eval_source
    parse = parser(layout)
    groups: dict[str, tuple[str, str, list[str]]] = {}  # norm source -> (id, source, references)
    held_out: set[str] = set()
    eval_records = _split(layout.eval(), layout.eval_filter, True, ctx.eval)
    for _, pair in ctx.feed(eval_records, ctx.eval, parse):
        held_out.update((norm_key(pair.first), norm_key(pair.second)))
        if norm_key(pair.first) == norm_key(pair.second):
            ctx.eval.report.count("identical_pairs")
            continue
        _, _, refs = groups.setdefault(norm_key(pair.first), (pair.id, pair.first, []))
        if all(norm_key(r) != norm_key(pair.second) for r in refs):
            refs.append(pair.second)
    for pair_id, source, refs in groups.values():
        ctx.eval.add(
            {
                "id": f"{layout.corpus}-eval-{pair_id}",
                "instruction": ctx.prompt + layout.shown(source),
                "input": "",
                "output": layout.shown(refs[0]),
                "source": source,
                "references": refs,
            }
        )

    train_records = _split(layout.train(), layout.eval_filter, False, ctx.train)
    for _, pair in ctx.feed(train_records, ctx.train, parse):
        a, b = norm_key(pair.first), norm_key(pair.second)
        if a == b:
            ctx.train.report.count("identical_pairs")
            continue
        if a in held_out or b in held_out:
            ctx.train.report.count("held_out_overlap_pairs")
            continue
        first, second = layout.shown(pair.first), layout.shown(pair.second)
        ctx.train.add(
            {
                "id": f"{layout.corpus}-train-{pair.id}-ab",
                "instruction": ctx.prompt + first,
                "input": "",
                "output": second,
            }
        )
        ctx.train.add(
            {
                "id": f"{layout.corpus}-train-{pair.id}-ba",
                "instruction": ctx.prompt + second,
                "input": "",
                "output": first,
            }
        )


def build_paws(ctx: BuildContext) -> None:
    build_layout(ctx, paws_layout(ctx))


def build_qqp(ctx: BuildContext) -> None:
    build_layout(ctx, qqp_layout(ctx))
