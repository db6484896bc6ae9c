"""The provenance block of results.json: eval files named as the project names them."""

from __future__ import annotations

from pathlib import Path

from mprtune.evaluate.provenance import project_path, provenance


def test_eval_files_are_keyed_relative_to_the_project_root_and_absolute_only_outside_it(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (root / "data").mkdir(parents=True)
    elsewhere.mkdir()
    matrix = root / "mprtune.yaml"
    matrix.write_text("models: {}\n")
    inside, outside = root / "data" / "jfleg_eval.jsonl", elsewhere / "shared_eval.jsonl"
    block = provenance(root, matrix, {str(outside): "a" * 64, str(inside): "b" * 64})
    assert block["eval_data_sha256"] == {str(outside): "a" * 64, "data/jfleg_eval.jsonl": "b" * 64}


def test_a_path_through_a_symlinked_root_or_with_dot_dot_is_still_relative(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(root)
    assert project_path(root, link / "data" / "x.jsonl") == "data/x.jsonl"
    assert project_path(link, root / "data" / ".." / "data" / "x.jsonl") == "data/x.jsonl"
    assert project_path(root, tmp_path / "project-other" / "x.jsonl") == str(tmp_path / "project-other" / "x.jsonl")
