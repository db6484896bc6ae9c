"""prepare-data knowledge: KILT NQ JSONL -> kilt_qa_*, wiki JSONL -> wiki_desc_* (fixtures written here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import kilt_row, matrix_in, read_rows, write_jsonl

from mprtune.data import DESCRIBE_PROMPT, prepare_data
from mprtune.data.knowledge import first_sentence, is_eval_title
from mprtune.errors import DataError

TRAIN = [
    kilt_row("t1", "who wrote hamlet", ["William Shakespeare", "Shakespeare"]),
    kilt_row("t2", "what is the capital of peru", ["Lima"]),
    kilt_row("t3", "What is the capital of  France", ["Paris"]),
]  # = a dev question: held out
DEV = [
    kilt_row("d1", "what is the capital of france", ["Paris", "Paris, France", "Paris"]),
    kilt_row("d2", "how many legs does a spider have", ["eight", "8"]),
]
# Titles chosen so that the sha256 rule puts exactly one of them in the eval slice.
WIKI_TITLES = ["Nile", "Lima", "Hamlet", "Peru", "Spider", "Shakespeare"]


def wiki_rows(titles=WIKI_TITLES) -> list[dict]:
    return [{"title": t, "text": f"{t} is a thing that people know about. It has a second sentence."} for t in titles]


def source(tmp_path: Path, train=TRAIN, dev=DEV, wiki=None) -> Path:
    src = tmp_path / "src"
    write_jsonl(src / "kilt" / "nq-train-kilt.jsonl", train)
    write_jsonl(src / "kilt" / "nq-dev-kilt.jsonl", dev)
    write_jsonl(src / "wiki.jsonl", wiki if wiki is not None else wiki_rows())
    return src


def run(tmp_path: Path, src: Path, **kw):
    report = prepare_data(matrix_in(tmp_path), ["knowledge"], str(src), tmp_path / "out", **kw)
    return {f.file: f for f in report.files}


def test_kilt_qa_rows(tmp_path):
    files = run(tmp_path, source(tmp_path))
    train = read_rows(tmp_path / "out" / "kilt_qa_train.jsonl")
    evals = read_rows(tmp_path / "out" / "kilt_qa_eval.jsonl")
    assert train == [
        {"id": "kilt-nq-t1", "instruction": "Answer: who wrote hamlet", "input": "", "output": "William Shakespeare"},
        {"id": "kilt-nq-t2", "instruction": "Answer: what is the capital of peru", "input": "", "output": "Lima"},
    ]
    assert evals[0] == {
        "id": "kilt-nq-d1",
        "instruction": "Answer: what is the capital of france",
        "input": "",
        "output": "Paris",
        "source": "what is the capital of france",
        "references": ["Paris", "Paris, France"],
        "kind": "qa",
    }
    assert files["kilt_qa_train.jsonl"].counters["held_out_overlap_pairs"] == 1


def test_wiki_descriptions_and_held_out_slice(tmp_path):
    assert [t for t in WIKI_TITLES if is_eval_title(t)] == ["Nile"]
    files = run(tmp_path, source(tmp_path))
    train = read_rows(tmp_path / "out" / "wiki_desc_train.jsonl")
    evals = read_rows(tmp_path / "out" / "wiki_desc_eval.jsonl")
    assert evals == [
        {
            "id": "wiki-Nile",
            "instruction": DESCRIBE_PROMPT + "Nile",
            "input": "",
            "output": "Nile is a thing that people know about.",
            "source": "Nile",
            "references": ["Nile is a thing that people know about."],
            "kind": "description",
        }
    ]
    assert [r["instruction"] for r in train] == [DESCRIBE_PROMPT + t for t in WIKI_TITLES[1:]]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"]
    assert manifest["wiki_desc_train.jsonl"]["prompt"] == "Describe: "
    assert manifest["kilt_qa_train.jsonl"]["prompt"] == "Answer: "
    assert files["wiki_desc_train.jsonl"].rows == 5


def test_kilt_knowledge_source_rows_disambiguation_and_duplicates(tmp_path):
    wiki = [
        {
            "wikipedia_id": "1",
            "wikipedia_title": "Lima",
            "text": {"paragraph": ["Lima\n", "Section::::Abstract.\n", "Lima is the capital of Peru. It is big.\n"]},
        },
        {"wikipedia_title": "Peru", "text": ["Peru\n", "BULLET::::x\n", "Peru is a country in South America.\n"]},
        {"title": "Mercury (disambiguation)", "text": "Mercury may refer to many things."},
        {"title": "Lima", "text": "Lima again."},
        {"title": "Nile", "text": "Nile is a river."},  # the eval slice must not be empty
    ]
    files = run(tmp_path, source(tmp_path, wiki=wiki))
    outputs = [r["output"] for r in read_rows(tmp_path / "out" / "wiki_desc_train.jsonl")]
    assert outputs == ["Lima is the capital of Peru.", "Peru is a country in South America."]
    assert files["wiki_desc_train.jsonl"].counters["disambiguation_pages"] == 1
    assert files["wiki_desc_train.jsonl"].counters["duplicates"] == 1


@pytest.mark.parametrize(
    "text, first",
    [
        ("St. Louis is a city in Missouri. It lies on a river.", "St. Louis is a city in Missouri."),
        ("J. R. R. Tolkien was an English writer. He wrote books.", "J. R. R. Tolkien was an English writer."),
        ("The U.S. Navy was founded in 1775. It is large.", "The U.S. Navy was founded in 1775."),
        ("Water boils at 100 degrees Celsius at sea level", "Water boils at 100 degrees Celsius at sea level"),
        ("Is it? Yes. Then 1900 came.", "Is it?"),
        ("A  line\nwith   spaces. Next.", "A line with spaces."),
    ],
)
def test_first_sentence(text, first):
    assert first_sentence(text) == first


@pytest.mark.parametrize(
    "where, line, message",
    [
        ("train", '{"id": "x", "input": "q", "output": [', r"nq-train-kilt\.jsonl:2: invalid JSON"),
        ("train", {"id": "x", "output": [{"answer": "a"}]}, r"nq-train-kilt\.jsonl:2: missing field 'input'"),
        (
            "train",
            {"id": "x", "input": "q", "output": [{"answer": " "}, {"provenance": []}]},
            r"nq-train-kilt\.jsonl:2: no non-empty answer in 'output'",
        ),
        ("dev", ["not", "an", "object"], r"nq-dev-kilt\.jsonl:2: expected a JSON object"),
        ("wiki", {"title": "Empty", "text": ""}, r"wiki\.jsonl:2: empty text: no prose paragraph"),
        ("wiki", {"text": "No title here."}, r"wiki\.jsonl:2: missing field 'title'"),
    ],
)
def test_bad_rows(tmp_path, where, line, message):
    train, dev, wiki = list(TRAIN), list(DEV), wiki_rows()
    target = {"train": train, "dev": dev, "wiki": wiki}[where]
    target.insert(1, line)
    src = source(tmp_path, train, dev, wiki)
    with pytest.raises(DataError, match=message):
        run(tmp_path, src)
    files = run(tmp_path, src, skip_bad=True)
    counted = {"train": "kilt_qa_train.jsonl", "dev": "kilt_qa_eval.jsonl", "wiki": "wiki_desc_train.jsonl"}[where]
    assert files[counted].skipped_bad == 1
    assert sum(f.skipped_bad for f in files.values()) == 1


def test_missing_wiki_file(tmp_path):
    src = source(tmp_path)
    (src / "wiki.jsonl").unlink()
    with pytest.raises(DataError, match=r"wiki\.jsonl: file not found"):
        run(tmp_path, src)
