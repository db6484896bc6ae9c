"""Helpers shared by the prepare-data tests (no tests here): matrices and raw fixtures in tmp_path."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import yaml

from mprtune.config.matrix import Matrix, parse_matrix
from mprtune.config.yamlfile import read_yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
RAW = SAMPLES / "raw"


def jfleg_dir() -> Path | None:
    """The real JFLEG (read-only, CC BY-NC-SA: never copied): $MPRTUNE_JFLEG_DIR or ../shared/data/jfleg."""
    folder = Path(os.environ.get("MPRTUNE_JFLEG_DIR") or ROOT.parent / "shared" / "data" / "jfleg")
    return folder if (folder / "test.src").is_file() else None


def raw_matrix(**task_overrides: Any) -> dict:
    """The project's mprtune.yaml as a dict; task_overrides: {task: {key: value}}."""
    raw = copy.deepcopy(read_yaml(ROOT / "mprtune.yaml"))
    for task, values in task_overrides.items():
        raw["tasks"][task].update(values)
    return raw


def matrix_in(folder: Path, raw: dict | None = None, profile: str = "reference") -> Matrix:
    """Write the matrix to folder/mprtune.yaml (so relative paths resolve there) and parse it."""
    raw = raw if raw is not None else raw_matrix()
    path = folder / "mprtune.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return parse_matrix(read_yaml(path), path, profile)


def write_jfleg(folder: Path, split: str, rows: list[tuple[str, list[str]]], tail: str = "") -> Path:
    """`<split>.src` + `.ref0..3` from (sentence, 4 corrections); `tail` ends every line (dev: ' ')."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.src").write_text("".join(s + tail + "\n" for s, _ in rows), encoding="utf-8")
    for k in range(4):
        (folder / f"{split}.ref{k}").write_text("".join(r[k] + tail + "\n" for _, r in rows), encoding="utf-8")
    return folder


def write_tsv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def kilt_row(qid: str, question: str, answers: list[str]) -> dict:
    prov = [{"wikipedia_id": "1", "title": "T", "start_paragraph_id": 1, "end_paragraph_id": 1}]
    return {
        "id": qid,
        "input": question,
        "output": [{"answer": a, "provenance": prov} for a in answers] + [{"provenance": prov}],
        "meta": {},
    }


PAWS_HEADER = ["id", "sentence1", "sentence2", "label"]
QQP_HEADER = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
