"""Knowledge: KILT Natural Questions (question -> short answer) + entity descriptions from Wikipedia.

Sources (``--source PATH``):
- ``PATH/kilt/nq-train-kilt.jsonl`` and ``PATH/kilt/nq-dev-kilt.jsonl`` (or both directly in PATH):
  KILT rows ``{"id", "input": question, "output": [{"answer": ..., "provenance": [...]}, ...]}``;
  Hugging Face ``facebook/kilt_tasks`` config ``nq``, splits train / validation.
- ``PATH/wiki.jsonl``: one article per line, either ``{"title", "text": "..."}`` (a dump slice; text
  paragraphs separated by newlines) or a KILT knowledge-source row ``{"wikipedia_title", "text":
  {"paragraph": [...]}}`` / ``"text": [...]`` (kilt_knowledgesource.json lines work as they are).
  Hugging Face: ``facebook/kilt_wikipedia`` config 2019-08-01 (streamed; the first WIKI_HF_MAX_PAGES
  usable articles). That repository is a loading script, which datasets>=4 no longer runs: the
  load then fails with the usual one-line DataError, and a local wiki.jsonl is the way.

Definitions:
- QA: gold answers = the non-empty ``answer`` strings of ``output`` (de-duplicated, in order;
  provenance-only entries have none). Training row: question -> first answer. Eval row (KILT dev):
  ``output`` = first answer, ``references`` = all gold answers, ``kind`` = "qa". A row without any
  answer is a bad row. Training questions equal (case-folded, whitespace-collapsed) to a dev
  question are dropped (``held_out_overlap_pairs``). Prompt: the task's prompt ("Answer: ").
- Descriptions: entity (article title) -> the first sentence of the first prose paragraph (the
  title line and ``Section::::``/``BULLET::::`` lines of KILT are skipped; the sentence ends at the
  first . ! or ? followed by a space and a capital/digit, not after an initial or a common
  abbreviation). Prompt: DESCRIBE_PROMPT ("Describe: "), whatever the task's prompt, recorded in the
  manifest. ``(disambiguation)`` pages are skipped (``disambiguation_pages``); a repeated title is
  used once (``duplicates``). Held-out slice: titles whose sha256 % WIKI_EVAL_MOD == 0 (~10 %,
  stable whatever the order or the slice) go to wiki_desc_eval (``kind`` = "description",
  ``references`` = [the sentence]); all others train. An article without title or prose is a bad row.
- ids: ``kilt-nq-<KILT id>``, ``wiki-<Title_with_underscores>``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from typing import Any

from mprtune.data.common import (
    BuildContext,
    clean,
    digest,
    norm_key,
)
from mprtune.data.sources import (
    Record,
    RowError,
    RowErrorAt,
    iter_hf,
    iter_jsonl,
    load_hf,
    require_file,
)

KILT_HF = ("facebook/kilt_tasks", "nq")
KILT_FILES = {"train": "nq-train-kilt.jsonl", "eval": "nq-dev-kilt.jsonl"}
WIKI_HF = ("facebook/kilt_wikipedia", "2019-08-01", "full")
WIKI_FILE = "wiki.jsonl"
WIKI_EVAL_MOD = 10
WIKI_HF_MAX_PAGES = 20000
_SKIP_PREFIXES = ("Section::::", "BULLET::::")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "prof",
    "inc",
    "ltd",
    "co",
    "no",
    "vs",
    "etc",
    "mt",
    "ft",
    "gen",
    "col",
    "lt",
    "sgt",
    "rev",
    "gov",
    "sen",
    "rep",
    "approx",
    "ca",
    "c",
}
_SENTENCE_END = re.compile(r"[.!?](?=\s+[\"'(\[]?[A-Z0-9])")


# --------------------------------------------------------------------------- QA


def answers_of(output: Any) -> list[str]:
    if not isinstance(output, list):
        raise RowError("field 'output' must be a list of {answer, provenance} objects")
    answers = [
        o["answer"].strip()
        for o in output
        if isinstance(o, dict) and isinstance(o.get("answer"), str) and o["answer"].strip()
    ]
    if not answers:
        raise RowError("no non-empty answer in 'output'")
    return list(dict.fromkeys(answers))


def parse_qa(record: Record) -> tuple[str, str, list[str]]:
    """(id, question, gold answers)."""
    qid = record.fields.get("id")
    if qid is None or not str(qid).strip():
        raise RowError("missing field 'id'")
    if "output" not in record.fields:
        raise RowError("missing field 'output'")
    return str(qid).strip(), clean(record.fields.get("input"), "input"), answers_of(record.fields["output"])


def _qa_records(ctx: BuildContext, split: str) -> tuple[Iterator[Record | RowErrorAt], str]:
    if ctx.source_root is None:
        name, config = KILT_HF
        hf_split = "train" if split == "train" else "validation"
        return iter_hf(load_hf(name, config, hf_split), f"hf:{name}[{hf_split}]"), f"hf:{name}/{config}[{hf_split}]"
    path = require_file(ctx.corpus_dir("kilt", KILT_FILES["train"]) / KILT_FILES[split], "KILT NQ layout")
    return iter_jsonl(path, ctx.display(path)), ctx.display(path)


def build_qa(ctx: BuildContext) -> None:
    """kilt_qa_eval from KILT dev (all answers kept), then kilt_qa_train minus dev questions."""
    held_out: set[str] = set()
    records, ctx.eval.report.source = _qa_records(ctx, "eval")
    for _, (qid, question, answers) in ctx.feed(records, ctx.eval, parse_qa):
        held_out.add(norm_key(question))
        ctx.eval.add(
            {
                "id": f"kilt-nq-{qid}",
                "instruction": ctx.prompt + question,
                "input": "",
                "output": answers[0],
                "source": question,
                "references": answers,
                "kind": "qa",
            }
        )
    records, ctx.train.report.source = _qa_records(ctx, "train")
    for _, (qid, question, answers) in ctx.feed(records, ctx.train, parse_qa):
        if norm_key(question) in held_out:
            ctx.train.report.count("held_out_overlap_pairs")
            continue
        ctx.train.add({"id": f"kilt-nq-{qid}", "instruction": ctx.prompt + question, "input": "", "output": answers[0]})


# --------------------------------------------------------------------------- descriptions


def first_sentence(paragraph: str) -> str:
    """The paragraph up to its first sentence end (see the module docstring)."""
    text = " ".join(paragraph.split())
    for match in _SENTENCE_END.finditer(text):
        if match.group() == ".":
            word = text[: match.start()].rsplit(" ", 1)[-1].lstrip("\"'([").lower()
            if (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS or "." in word:
                continue  # "J. R. R. Tolkien", "St. Louis", "the U.S. Navy"
        return text[: match.end()]
    return text


def _paragraphs(text: Any) -> list[str]:
    if isinstance(text, str):
        return text.split("\n")
    if isinstance(text, dict):
        text = text.get("paragraph")
    if isinstance(text, list) and all(isinstance(p, str) for p in text):
        return text
    raise RowError("field 'text' must be a string, a list of paragraphs or {'paragraph': [...]}")


def parse_article(record: Record) -> tuple[str, str] | None:
    """(title, first sentence); None for a disambiguation page."""
    fields = record.fields
    title = clean(fields.get("title", fields.get("wikipedia_title")), "title")
    if "text" not in fields:
        raise RowError("missing field 'text'")
    if title.endswith("(disambiguation)"):
        return None
    for paragraph in _paragraphs(fields["text"]):
        line = paragraph.strip()
        if not line or line == title or line.startswith(_SKIP_PREFIXES):
            continue
        return title, first_sentence(line)
    raise RowError("empty text: no prose paragraph")


def is_eval_title(title: str) -> bool:
    return int(hashlib.sha256(title.encode("utf-8")).hexdigest()[:8], 16) % WIKI_EVAL_MOD == 0


def _wiki_records(ctx: BuildContext) -> tuple[Iterator[Record | RowErrorAt], str]:
    if ctx.source_root is None:
        name, config, split = WIKI_HF
        rows = load_hf(name, config, split, streaming=True)
        return iter_hf(rows, f"hf:{name}[{split}]"), f"hf:{name}/{config}[{split}] (first {WIKI_HF_MAX_PAGES} pages)"
    path = require_file(ctx.source_root / WIKI_FILE, "knowledge layout: wiki.jsonl at the top of --source")
    return iter_jsonl(path, ctx.display(path)), ctx.display(path)


def build_descriptions(ctx: BuildContext) -> None:
    """One pass: each usable article goes to wiki_desc_eval (title hash) or wiki_desc_train."""
    records, source = _wiki_records(ctx)
    ctx.train.report.source = ctx.eval.report.source = source
    seen: set[bytes] = set()
    limit = WIKI_HF_MAX_PAGES if ctx.source_root is None else None
    articles = ctx.feed(records, ctx.train, _counting_disambiguation(ctx))  # bad rows: counted on train
    for _, (title, sentence) in itertools.islice(articles, limit):
        key = digest(norm_key(title))
        if key in seen:
            ctx.train.report.count("duplicates")
            continue
        seen.add(key)
        row = {
            "id": "wiki-" + "_".join(title.split()),
            "instruction": ctx.prompt + title,
            "input": "",
            "output": sentence,
        }
        if is_eval_title(title):
            ctx.eval.add({**row, "source": title, "references": [sentence], "kind": "description"})
        else:
            ctx.train.add(row)


def _counting_disambiguation(ctx: BuildContext):
    def parse(record: Record) -> tuple[str, str] | None:
        parsed = parse_article(record)
        if parsed is None:
            ctx.train.report.count("disambiguation_pages")
        return parsed

    return parse


def local_layout_help() -> str:
    return f"kilt/{KILT_FILES['train']}, kilt/{KILT_FILES['eval']} (KILT NQ), {WIKI_FILE} ({{title, text}} per line)"
