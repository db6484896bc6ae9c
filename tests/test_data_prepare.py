"""prepare-data as a whole: atomic replacement, manifest merge, CLI exit codes, --source hf offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from data_helpers import (
    PAWS_HEADER,
    ROOT,
    matrix_in,
    raw_matrix,
    read_rows,
    write_jfleg,
    write_tsv,
)

from mprtune.data import prepare_data
from mprtune.data.common import file_sha256
from mprtune.errors import DataError

GOOD_TRAIN = [
    [1, "The cat sat on the mat .", "On the mat sat the cat .", 1],
    [2, "The town lies north of the river .", "North of the river lies the town .", 1],
]
GOOD_TEST = [[7, "The lake is deep .", "The lake has great depth .", 1]]


def paws_source(folder: Path, train=GOOD_TRAIN, test=GOOD_TEST) -> Path:
    write_tsv(folder / "paws" / "train.tsv", PAWS_HEADER, train)
    write_tsv(folder / "paws" / "test.tsv", PAWS_HEADER, test)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_failed_prepare_leaves_previous_files_byte_identical(tmp_path):
    matrix, out = matrix_in(tmp_path), tmp_path / "out"
    src = tmp_path / "src"
    write_jfleg(src / "jfleg", "dev", [("He go .", ["He goes ."] * 4)])
    write_jfleg(src / "jfleg", "test", [("She go .", ["She goes ."] * 4)])
    paws_source(src)
    prepare_data(matrix, ["grammar", "paws_only"], str(src), out)
    before = snapshot(out)
    assert set(before) == {
        "jfleg_train.jsonl",
        "jfleg_eval.jsonl",
        "paws_train.jsonl",
        "paws_eval.jsonl",
        "manifest.json",
    }
    # The grammar files would change, but PAWS (prepared later in the same run) is bad: nothing moves.
    write_jfleg(src / "jfleg", "dev", [("He go .", ["He goes ."] * 4), ("I has .", ["I have ."] * 4)])
    paws_source(src, train=GOOD_TRAIN + [[3, "A b .", "B a .", "yes"]])
    with pytest.raises(DataError, match=r"train\.tsv:4: label must be 0 or 1"):
        prepare_data(matrix, ["grammar", "paws_only"], str(src), out)
    assert snapshot(out) == before  # no temporary files left either


def test_manifest_merges_and_matches_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"files": {"other.jsonl": {"rows": 3}}}))
    prepare_data(matrix_in(tmp_path), ["paws_only"], str(paws_source(tmp_path / "src")), out)
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert files["other.jsonl"] == {"rows": 3}
    for name in ("paws_train.jsonl", "paws_eval.jsonl"):
        entry = files[name]
        assert entry["rows"] == len(read_rows(out / name))
        assert entry["sha256"] == file_sha256(out / name)
        assert entry["prompt"] == "Paraphrase: " and entry["source"].startswith("src/paws/")
    assert files["paws_train.jsonl"]["split"] == "train" and files["paws_eval.jsonl"]["split"] == "eval"


def test_ids_are_unique_and_stable(tmp_path):
    src = paws_source(tmp_path / "src")
    prepare_data(matrix_in(tmp_path), ["paws_only"], str(src), tmp_path / "a")
    prepare_data(matrix_in(tmp_path), ["paws_only"], str(src), tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    ids = [r["id"] for r in read_rows(tmp_path / "a" / "paws_train.jsonl")]
    assert len(ids) == len(set(ids))


def test_unknown_task_and_prompt_conflict(tmp_path):
    with pytest.raises(DataError, match="unknown task 'nope'"):
        prepare_data(matrix_in(tmp_path), ["nope"], "hf", tmp_path / "out")
    matrix = matrix_in(tmp_path, raw_matrix(paws_only={"prompt": "Rephrase: "}))
    with pytest.raises(DataError, match="different prompts"):
        prepare_data(matrix, ["paraphrase"], "hf", tmp_path / "out")


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def invoke(tmp_path, monkeypatch):
    from mprtune.cli import cli

    command, prefix = cli, ["prepare-data"]
    monkeypatch.setenv("MPRTUNE_PROJECT_DIR", str(tmp_path))
    matrix_in(tmp_path)  # tmp_path/mprtune.yaml is the project's matrix

    def run(*args: str):
        return CliRunner().invoke(command, [*prefix, *args])

    return run


def test_cli_writes_to_the_matrix_data_dir_and_prints_a_table(invoke, tmp_path):
    paws_source(tmp_path / "src")
    result = invoke("paws_only", "--source", str(tmp_path / "src"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "paws_train.jsonl").is_file() and (tmp_path / "data" / "manifest.json").is_file()
    assert "paws_train.jsonl" in result.stdout and "rows" in result.stdout


def test_cli_bad_row_exits_2_with_one_line(invoke, tmp_path):
    paws_source(tmp_path / "src", train=GOOD_TRAIN + [[3, "A b .", "", 1]])
    result = invoke("paws_only", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert lines[0].endswith("src/paws/train.tsv:4: empty text in field 'sentence2'")
    assert not (tmp_path / "o" / "paws_train.jsonl").exists()


def test_cli_skip_bad_counts(invoke, tmp_path):
    paws_source(tmp_path / "src", train=GOOD_TRAIN + [[3, "A b .", "B a .", 5], [4, "x"]])
    result = invoke("paws_only", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "o"), "--skip-bad")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("skipped bad row:") == 2
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())["files"]
    assert manifest["paws_train.jsonl"]["skipped_bad"] == 2 and manifest["paws_train.jsonl"]["rows"] == 4


def test_cli_on_overlong_fail_exits_2(invoke, tmp_path):
    matrix_in(tmp_path, raw_matrix(paws_only={"cutoff_len": 20}, paraphrase={"cutoff_len": 20}))
    paws_source(tmp_path / "src")
    result = invoke(
        "paws_only", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "o"), "--on-overlong", "fail"
    )
    assert result.exit_code == 2 and "rows longer than cutoff_len" in result.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").glob("*.jsonl"))


def test_cli_unknown_task_exits_2(invoke):
    result = invoke("grammer", "--source", "hf")
    assert result.exit_code == 2 and "unknown task 'grammer'" in result.stderr


def test_source_hf_offline_is_one_clear_line(tmp_path):
    """No network here: HF offline mode must fail fast with a DataError naming --source PATH."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "MPRTUNE_PROJECT_DIR": str(ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mprtune", "prepare-data", "grammar", "--source", "hf", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and "jhu-clsp/jfleg" in error[0] and "--source PATH" in error[0]
    assert "offline mode is on (HF_HUB_OFFLINE=1) and it is not in the local" in error[0]
    assert len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_an_unreachable_hub_is_one_plain_line_without_retry_noise(tmp_path):
    """Network down (here: the Hub endpoint is a closed local port): say so plainly, at once, in one line."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"), MPRTUNE_PROJECT_DIR=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "mprtune", "prepare-data", "grammar", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot download jhu-clsp/jfleg"), lines
    assert "the network is unreachable: no connection to the Hugging Face Hub (127.0.0.1" in lines[0]
    assert lines[0].endswith("pass --source PATH (layout: `mprtune prepare-data --help`)")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_broken_manifest_fails_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match=r"manifest\.json:1: manifest is not valid JSON"):
        prepare_data(matrix_in(tmp_path), ["paws_only"], str(paws_source(tmp_path / "src")), out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
