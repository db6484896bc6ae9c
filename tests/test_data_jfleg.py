"""prepare-data grammar: JFLEG files -> jfleg_train / jfleg_eval (fixtures written here; real JFLEG read-only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import jfleg_dir, matrix_in, read_rows, write_jfleg

from mprtune.data import prepare_data
from mprtune.errors import DataError
from mprtune.metrics.tokens import as_references, detokenize

DEV = [
    ("He go to work .", ["He goes to work .", "He goes to work .", "He went to work .", "He goes to work ."]),
    ("I has a cat .", ["I have a cat .", "I have a cat .", "I have a cat .", "I had a cat ."]),
]
TEST = [
    ("She like apples .", ["She likes apples .", "She likes apples .", "She liked apples .", "She likes the apples ."]),
    ("They is here .", ["They are here .", "They are here .", "They are here .", "They were here ."]),
]


def prepare(tmp_path: Path, src: Path, **kw):
    return prepare_data(matrix_in(tmp_path), ["grammar"], str(src), tmp_path / "out", **kw)


def test_local_layout_rows_ids_and_stripping(tmp_path):
    src = tmp_path / "src"
    write_jfleg(src / "jfleg", "dev", DEV, tail=" ")  # dev lines end with a space, as in JFLEG
    write_jfleg(src / "jfleg", "test", TEST)
    report = prepare(tmp_path, src)
    train = read_rows(tmp_path / "out" / "jfleg_train.jsonl")
    evals = read_rows(tmp_path / "out" / "jfleg_eval.jsonl")
    assert [r["id"] for r in train] == ["jfleg-dev-0001-0", "jfleg-dev-0001-2", "jfleg-dev-0002-0", "jfleg-dev-0002-3"]
    # the model reads and writes normal text; eval rows keep JFLEG's tokens for official scoring
    assert train[0] == {
        "id": "jfleg-dev-0001-0",
        "instruction": "Fix: He go to work.",
        "input": "",
        "output": "He goes to work.",
    }
    assert evals[0] == {
        "id": "jfleg-test-0001",
        "instruction": "Fix: She like apples.",
        "input": "",
        "output": "She likes apples.",
        "source": "She like apples .",
        "references": TEST[0][1],
    }
    assert all(len(r["references"]) == 4 for r in evals)
    by_file = {f.file: f for f in report.files}
    assert by_file["jfleg_train.jsonl"].rows == 4 and by_file["jfleg_eval.jsonl"].rows == 2
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"]
    assert manifest["jfleg_train.jsonl"]["rows"] == 4 and manifest["jfleg_train.jsonl"]["prompt"] == "Fix: "
    assert manifest["jfleg_eval.jsonl"]["split"] == "eval"


def test_text_is_detokenized_for_the_model_and_kept_for_scoring(tmp_path):
    dev = [
        (
            "I ca n't go , it 's late .",
            [
                "I ca n't go , it 's late .",
                "I can't go, it's late.",
                "I can not go , it 's late .",
                "`` I ca n't go , '' it 's late .",
            ],
        )
    ]
    test = [('He said " hi " .', ["He said , `` hi . ''", "He said : `` hi '' .", 'He said " hi " .', "He said hi ."])]
    src = write_jfleg(write_jfleg(tmp_path / "j", "dev", dev), "test", test)
    prepare(tmp_path, src)
    train = read_rows(tmp_path / "out" / "jfleg_train.jsonl")
    # the first two corrections differ only in spacing: one training row
    assert [(r["instruction"], r["output"]) for r in train] == [
        ("Fix: I can't go, it's late.", "I can't go, it's late."),
        ("Fix: I can't go, it's late.", "I can not go, it's late."),
        ("Fix: I can't go, it's late.", "\"I can't go,\" it's late."),
    ]
    (row,) = read_rows(tmp_path / "out" / "jfleg_eval.jsonl")
    assert row["instruction"] == 'Fix: He said "hi".' and row["output"] == 'He said, "hi."'
    assert row["source"] == test[0][0] and row["references"] == test[0][1]


def test_source_folder_may_be_the_jfleg_folder_itself(tmp_path):
    src = write_jfleg(write_jfleg(tmp_path / "flat", "dev", DEV), "test", TEST)
    assert {f.rows for f in prepare(tmp_path, src).files} == {4, 2}


def test_blank_last_line_is_dropped_not_an_error(tmp_path):
    src = write_jfleg(write_jfleg(tmp_path / "j", "dev", DEV), "test", TEST + [("", [""] * 4)])
    report = prepare(tmp_path, src)
    assert {f.file: f.rows for f in report.files}["jfleg_eval.jsonl"] == 2
    assert all(f.skipped_bad == 0 for f in report.files)


def test_blank_line_in_the_middle_is_a_bad_row(tmp_path):
    src = write_jfleg(write_jfleg(tmp_path / "j", "dev", DEV), "test", [TEST[0], ("", [""] * 4), TEST[1]])
    with pytest.raises(DataError, match=r"test\.src:2: empty text"):
        prepare(tmp_path, src)
    report = prepare(tmp_path, src, skip_bad=True)
    evals = {f.file: f for f in report.files}["jfleg_eval.jsonl"]
    assert (evals.rows, evals.skipped_bad) == (2, 1)
    assert evals.bad_examples[0].endswith("test.src:2: empty text in field 'sentence'")


def test_all_corrections_empty_is_a_bad_row(tmp_path):
    src = write_jfleg(write_jfleg(tmp_path / "j", "dev", [DEV[0], ("Good sentence .", [""] * 4)]), "test", TEST)
    with pytest.raises(DataError, match=r"dev\.src:2: no non-empty correction"):
        prepare(tmp_path, src)


def test_empty_single_reference_is_left_out(tmp_path):
    rows = [(TEST[0][0], ["She likes apples .", "", "She liked apples .", "She likes apples ."])]
    src = write_jfleg(write_jfleg(tmp_path / "j", "dev", DEV), "test", rows)
    prepare(tmp_path, src)
    assert read_rows(tmp_path / "out" / "jfleg_eval.jsonl")[0]["references"] == [
        "She likes apples .",
        "She liked apples .",
        "She likes apples .",
    ]


def test_reference_files_of_unequal_length_always_fail(tmp_path):
    src = write_jfleg(write_jfleg(tmp_path / "j", "dev", DEV), "test", TEST)
    (src / "test.ref2").write_text("She likes apples .\n")
    for skip_bad in (False, True):
        with pytest.raises(DataError, match=r"test\.ref2:2: reference files of unequal length"):
            prepare(tmp_path, src, skip_bad=skip_bad)


def test_missing_file_names_the_layout(tmp_path):
    src = write_jfleg(tmp_path / "j", "dev", DEV)
    with pytest.raises(DataError, match=r"test\.src: file not found"):
        prepare(tmp_path, src)


def test_training_pairs_touching_a_test_sentence_are_held_out(tmp_path):
    dev = DEV + [(TEST[1][0], ["They are here .", "They are here .", "They are here .", "They are here ."])]
    src = write_jfleg(write_jfleg(tmp_path / "j", "dev", dev), "test", TEST)
    report = prepare(tmp_path, src)
    train = {f.file: f for f in report.files}["jfleg_train.jsonl"]
    assert train.rows == 4 and train.counters["held_out_overlap_pairs"] == 1


@pytest.mark.skipif(jfleg_dir() is None, reason="real JFLEG not available (../shared/data/jfleg or $MPRTUNE_JFLEG_DIR)")
def test_real_jfleg_counts(tmp_path):
    folder = jfleg_dir()
    report = prepare(tmp_path, folder)
    out = tmp_path / "out"
    evals = read_rows(out / "jfleg_eval.jsonl")
    train = read_rows(out / "jfleg_train.jsonl")
    assert len(evals) == 747 and all(len(r["references"]) == 4 for r in evals)
    assert [r["source"] for r in evals] == [line.strip() for line in (folder / "test.src").read_text().splitlines()]
    assert all(
        r["instruction"] == "Fix: " + detokenize(r["source"]) and r["output"] == detokenize(r["references"][0])
        for r in evals
    )
    # what the tuned model learns to write comes back as the reference once tokenized like it
    back = sum(as_references(r["output"], r["source"], r["references"]) == r["references"][0] for r in evals)
    assert back >= 0.995 * len(evals)
    dev_sentences = {line.strip() for line in (folder / "dev.src").read_text().splitlines()}
    assert len(dev_sentences) == 754
    assert {r["instruction"].removeprefix("Fix: ") for r in train} == {detokenize(s) for s in dev_sentences}
    # distinct (sentence, correction) pairs; no JFLEG reference is empty, and no two corrections of
    # a sentence differ only in spacing (detokenized, they stay distinct)
    assert len(train) == len({(r["instruction"], r["output"]) for r in train}) == 2500
    assert all(not r["instruction"].endswith(" ") and not r["output"].endswith(" ") for r in train)
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert manifest["jfleg_eval.jsonl"]["rows"] == 747 and manifest["jfleg_train.jsonl"]["rows"] == 2500
    assert manifest["jfleg_train.jsonl"]["held_out_overlap_pairs"] == 0
    assert all(f.dropped_overlong == 0 and f.skipped_bad == 0 for f in report.files)
