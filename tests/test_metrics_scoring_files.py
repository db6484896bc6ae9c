"""score_files: line-aligned files in, the same metrics as compare out (the CLI is `mprtune score`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mprtune.errors import MprtuneError
from mprtune.evaluate.score import score_files
from mprtune.metrics.gleu import corpus_gleu


def _write(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_blank_reference_lines_are_references(tmp_path):
    """The official scorer keeps a blank reference line: GLEU draws it like any other."""
    src = _write(tmp_path, "src", ["he go to school .", "she like cats ."])
    hyp = _write(tmp_path, "hyp", ["he goes to school .", "she likes cats ."])
    ref0 = _write(tmp_path, "ref0", ["he goes to school .", "she likes cats ."])
    ref1 = _write(tmp_path, "ref1", ["he went to school .", ""])
    scores = score_files("grammar", hyp, src, [ref0, ref1], with_ci=False)
    official = corpus_gleu(
        ["he goes to school .", "she likes cats ."],
        ["he go to school .", "she like cats ."],
        [["he goes to school .", "he went to school ."], ["she likes cats .", ""]],
    )
    assert scores["gleu"]["value"] == pytest.approx(official.score)
    dropped = corpus_gleu(
        ["he goes to school .", "she likes cats ."],
        ["he go to school .", "she like cats ."],
        [["he goes to school .", "he went to school ."], ["she likes cats ."]],
    )
    assert official.score != pytest.approx(dropped.score)  # the blank line matters
    # row labels use the row's non-empty references: an empty output never matches a blank line
    hyp2 = _write(tmp_path, "hyp2", ["he goes to school .", ""])
    labels = score_files("grammar", hyp2, src, [ref0, ref1], with_ci=False)
    assert labels["exact_match"]["value"] == 0.5 and labels["empty"]["value"] == 0.5


def test_knowledge_rows_are_scored_as_the_kind_given(tmp_path):
    src = _write(tmp_path, "src", ["Nile", "Jupiter"])
    hyp = _write(tmp_path, "hyp", ["The Nile is a river in Africa.", "Jupiter is a planet."])
    ref = _write(tmp_path, "ref", ["The Nile is a major river in Africa.", "Jupiter is the fifth planet."])
    desc = score_files("knowledge", hyp, src, [ref], with_ci=False, row_kind="description")
    assert "rouge_l" in desc and "qa_f1" not in desc and desc["rouge_l"]["n"] == 2
    qa = score_files("knowledge", hyp, src, [ref], with_ci=False, row_kind="qa")
    assert "qa_f1" in qa and "rouge_l" not in qa
    with pytest.raises(MprtuneError, match="row kind"):
        score_files("knowledge", hyp, src, [ref], with_ci=False)
    with pytest.raises(MprtuneError, match="row kind"):
        score_files("knowledge", hyp, src, [ref], with_ci=False, row_kind="essay")
    with pytest.raises(MprtuneError, match="row kind"):
        score_files("grammar", hyp, src, [ref], with_ci=False, row_kind="qa")


def test_llamafactorys_own_predictions_are_scored_against_the_eval_file(tmp_path):
    """generated_predictions.jsonl (`predict`, `label`) is read as LLaMA-Factory writes it, each line checked."""
    import json

    rows = [
        {
            "id": "a",
            "instruction": "Fix: he go .",
            "input": "",
            "output": "he goes .",
            "source": "he go .",
            "references": ["he goes .", "he went ."],
        },
        {
            "id": "b",
            "instruction": "Fix: she like cats .",
            "input": "",
            "output": "she likes cats .",
            "source": "she like cats .",
            "references": ["she likes cats ."],
        },
    ]
    eval_file = tmp_path / "jfleg_eval.jsonl"
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    predicted = tmp_path / "generated_predictions.jsonl"
    lines = [
        {"prompt": "...", "predict": "he goes.", "label": "he goes.\n"},
        {"prompt": "...", "predict": "She likes cats.", "label": "she likes cats.\n"},
    ]
    predicted.write_text("".join(json.dumps(line) + "\n" for line in lines))
    scores = score_files("grammar", predicted, with_ci=False, eval_files=[eval_file])
    text = score_files(
        "grammar", _write(tmp_path, "hyp", ["he goes.", "She likes cats."]), with_ci=False, eval_files=[eval_file]
    )
    assert scores == text and scores["exact_match"]["value"] == 0.5  # tokenized like the references; case counts
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text("".join(json.dumps(line) + "\n" for line in reversed(lines)))
    with pytest.raises(MprtuneError, match=r"swapped.jsonl:1: prediction belongs to another row"):
        score_files("grammar", swapped, with_ci=False, eval_files=[eval_file])
    with pytest.raises(MprtuneError, match="grammar metrics need the eval rows: give --eval"):
        score_files("grammar", predicted, with_ci=False)
