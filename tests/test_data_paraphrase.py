"""prepare-data paraphrase: PAWS TSV, QQP in GLUE and Quora layouts, bad rows, hold-out, directions."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import PAWS_HEADER, QQP_HEADER, matrix_in, read_rows, write_tsv

from mprtune.data import prepare_data
from mprtune.errors import DataError
from mprtune.metrics import detokenize

PROMPT = "Paraphrase: "


def paws(src: Path, train: list[list], test: list[list]) -> Path:
    write_tsv(src / "paws" / "train.tsv", PAWS_HEADER, train)
    write_tsv(src / "paws" / "test.tsv", PAWS_HEADER, test)
    return src


PAWS_TRAIN = [
    [1, "The cat sat on the mat .", "On the mat sat the cat .", 1],
    [2, "Tom beat Ann at chess .", "Ann beat Tom at chess .", 0],
    [3, "The town lies north of the river .", "North of the river lies the town .", 1],
    [4, "A house on a hill .", "A house on a hill .", 1],  # identical: teaches copying
    [5, "The old bridge was rebuilt in 1920 .", "The lake is deep .", 1],  # second side is an eval sentence
]
PAWS_TEST = [
    [7, "The lake is deep .", "The lake has great depth .", 1],
    [8, "The lake is deep .", "Deep is the lake .", 1],
    [9, "Rome is south of Milan .", "Milan is south of Rome .", 0],
]


def run(tmp_path: Path, task: str, src: Path, **kw):
    report = prepare_data(matrix_in(tmp_path), [task], str(src), tmp_path / "out", **kw)
    return {f.file: f for f in report.files}


def test_paws_positives_both_directions_eval_one_direction_grouped(tmp_path):
    files = run(tmp_path, "paws_only", paws(tmp_path / "src", PAWS_TRAIN, PAWS_TEST))
    train = read_rows(tmp_path / "out" / "paws_train.jsonl")
    assert [r["id"] for r in train] == ["paws-train-1-ab", "paws-train-1-ba", "paws-train-3-ab", "paws-train-3-ba"]
    # PAWS is PTB-tokenized: the model reads and writes normal text, the scorer keeps the published tokens.
    assert train[1] == {
        "id": "paws-train-1-ba",
        "instruction": PROMPT + "On the mat sat the cat.",
        "input": "",
        "output": "The cat sat on the mat.",
    }
    evals = read_rows(tmp_path / "out" / "paws_eval.jsonl")
    assert evals == [
        {
            "id": "paws-eval-7",
            "instruction": PROMPT + "The lake is deep.",
            "input": "",
            "output": "The lake has great depth.",
            "source": "The lake is deep .",
            "references": ["The lake has great depth .", "Deep is the lake ."],
        }
    ]
    assert files["paws_train.jsonl"].counters == {"duplicates": 0, "held_out_overlap_pairs": 1, "identical_pairs": 1}
    assert set(files) == {"paws_train.jsonl", "paws_eval.jsonl"}


def test_no_eval_sentence_in_any_training_row(tmp_path):
    run(tmp_path, "paws_only", paws(tmp_path / "src", PAWS_TRAIN, PAWS_TEST))
    eval_texts = set()
    for row in read_rows(tmp_path / "out" / "paws_eval.jsonl"):
        eval_texts |= {row["source"], *row["references"]}
    eval_texts |= {detokenize(text) for text in eval_texts}
    for row in read_rows(tmp_path / "out" / "paws_train.jsonl"):
        assert row["instruction"].removeprefix(PROMPT) not in eval_texts and row["output"] not in eval_texts


def test_qqp_glue_layout(tmp_path):
    src = tmp_path / "src"
    write_tsv(
        src / "qqp" / "train.tsv",
        QQP_HEADER,
        [
            [0, 1, 2, "How do I learn Go?", "What is the best way to learn Go?", 1],
            [1, 3, 4, "Why is snow white?", "Why is coal black?", 0],
            [2, 5, 6, 'What does "ok" mean?', "Where does the word okay come from?", 1],
        ],
    )
    write_tsv(src / "qqp" / "dev.tsv", QQP_HEADER, [[9, 7, 8, "Is tea healthy?", "Is tea good for you?", 1]])
    files = run(tmp_path, "qqp_only", src)
    train = read_rows(tmp_path / "out" / "qqp_train.jsonl")
    assert [r["id"] for r in train] == ["qqp-train-0-ab", "qqp-train-0-ba", "qqp-train-2-ab", "qqp-train-2-ba"]
    assert train[2]["instruction"] == PROMPT + 'What does "ok" mean?'  # GLUE layout: quotes are text
    assert read_rows(tmp_path / "out" / "qqp_eval.jsonl")[0]["references"] == ["Is tea good for you?"]
    assert files["qqp_eval.jsonl"].source.endswith("qqp/dev.tsv")


def test_qqp_quora_layout_quotes_newlines_and_id_split(tmp_path):
    path = tmp_path / "src" / "qqp" / "quora_duplicate_questions.tsv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "0\t1\t2\tIs tea healthy?\tIs tea good for you?\t1\n"
        '1\t3\t4\t"What does ""ok"" mean?"\tWhat is the meaning of ok?\t1\n'
        '2\t5\t6\t"How do I write\na poem?"\tHow can I write a poem?\t1\n'
        "3\t7\t8\tWhy is snow white?\tWhy is coal black?\t0\n"
        "10\t21\t22\tHow tall is Everest?\tWhat is the height of Everest?\t1\n"
        "13\t27\t28\tHow tall is Everest?\tIs Everest tall?\t1\n",
        encoding="utf-8",
    )
    files = run(tmp_path, "qqp_only", tmp_path / "src")
    train = read_rows(tmp_path / "out" / "qqp_train.jsonl")
    evals = read_rows(tmp_path / "out" / "qqp_eval.jsonl")
    assert [r["source"] for r in evals] == ["Is tea healthy?", "How tall is Everest?"]
    assert [r["id"] for r in train] == ["qqp-train-1-ab", "qqp-train-1-ba", "qqp-train-2-ab", "qqp-train-2-ba"]
    assert train[0]["instruction"] == PROMPT + 'What does "ok" mean?'
    assert train[2]["instruction"] == PROMPT + "How do I write\na poem?"
    assert files["qqp_train.jsonl"].counters["held_out_overlap_pairs"] == 1  # id 13 shares an eval sentence


@pytest.mark.parametrize(
    "row, message",
    [
        ([1, "A b c .", "C b a .", 2], r"train\.tsv:3: label must be 0 or 1, got '2'"),
        ([1, "A b c .", "C b a ."], r"train\.tsv:3: expected 4 tab-separated fields, got 3"),
        ([1, "A b c .", "   ", 1], r"train\.tsv:3: empty text in field 'sentence2'"),
    ],
)
def test_bad_paws_rows(tmp_path, row, message):
    src = paws(tmp_path / "src", [PAWS_TRAIN[0], row, PAWS_TRAIN[2]], PAWS_TEST)
    with pytest.raises(DataError, match=message):
        run(tmp_path, "paws_only", src)
    files = run(tmp_path, "paws_only", src, skip_bad=True)
    assert files["paws_train.jsonl"].skipped_bad == 1 and files["paws_train.jsonl"].rows == 4
    assert len(files["paws_train.jsonl"].bad_examples) == 1


def test_bad_quora_id_is_reported_once(tmp_path):
    path = tmp_path / "src" / "qqp" / "quora_duplicate_questions.tsv"
    write_tsv(
        path,
        QQP_HEADER,
        [
            [0, 1, 2, "Is tea healthy?", "Is tea good?", 1],
            ["x", 1, 2, "A?", "B?", 1],
            [1, 3, 4, "How old is Rome?", "What is the age of Rome?", 1],
        ],
    )
    with pytest.raises(DataError, match=r"quora_duplicate_questions\.tsv:3: id must be a non-negative integer"):
        run(tmp_path, "qqp_only", tmp_path / "src")
    files = run(tmp_path, "qqp_only", tmp_path / "src", skip_bad=True)
    assert (files["qqp_train.jsonl"].skipped_bad, files["qqp_eval.jsonl"].skipped_bad) == (1, 0)


def test_missing_header_column_always_fails(tmp_path):
    src = tmp_path / "src"
    write_tsv(src / "paws" / "train.tsv", ["id", "sentence1", "sentence2"], [[1, "a", "b"]])
    write_tsv(src / "paws" / "test.tsv", PAWS_HEADER, PAWS_TEST)
    with pytest.raises(DataError, match=r"train\.tsv:1: missing column 'label'"):
        run(tmp_path, "paws_only", src, skip_bad=True)


def test_paraphrase_task_writes_paws_and_qqp(tmp_path):
    src = paws(tmp_path / "src", PAWS_TRAIN, PAWS_TEST)
    write_tsv(src / "qqp" / "train.tsv", QQP_HEADER, [[0, 1, 2, "How do I learn Go?", "How to learn Go?", 1]])
    write_tsv(src / "qqp" / "dev.tsv", QQP_HEADER, [[9, 7, 8, "Is tea healthy?", "Is tea good for you?", 1]])
    files = run(tmp_path, "paraphrase", src)
    assert list(files) == ["paws_train.jsonl", "paws_eval.jsonl", "qqp_train.jsonl", "qqp_eval.jsonl"]
