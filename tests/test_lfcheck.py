"""Rendered files are checked by LLaMA-Factory's own argument parser and dataset_info rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.config.lfcheck import check_dataset_info, check_yamls, llamafactory_version

ROOT = Path(__file__).resolve().parents[1]
needs_lf = pytest.mark.skipif(llamafactory_version() is None, reason="llamafactory not installed")


@needs_lf
def test_shipped_configs_pass_and_bad_ones_fail_naming_file_and_key(tmp_path: Path) -> None:
    good = {
        p.relative_to(ROOT).as_posix(): p.read_text() for p in sorted((ROOT / "llamafactory_configs").rglob("*.yaml"))
    }
    assert len(good) == 30
    bad = {
        "bad_key.yaml": good["llamafactory_configs/llama32_3b_grammar_lora.yaml"] + "lora_rnak: 8\n",
        "bad_template.yaml": good["llamafactory_configs/llama32_3b_grammar_lora.yaml"].replace(
            'template: "llama3"', 'template: "llama-3"'
        ),
    }
    problems = check_yamls({**good, **bad}, cache_file=tmp_path / "cache.json")
    assert len(problems) == 2, problems
    assert problems[0].startswith("bad_key.yaml: unknown LLaMA-Factory key(s)") and "lora_rnak" in problems[0]
    assert problems[1].startswith("bad_template.yaml: template: unknown LLaMA-Factory template 'llama-3'")
    # Good files are cached by content; bad ones are checked again.
    cached = json.loads((tmp_path / "cache.json").read_text())
    assert len(cached) == 30


@needs_lf
def test_render_fails_on_an_extra_arg_llamafactory_does_not_know(tmp_path: Path) -> None:
    text = (ROOT / "mprtune.yaml").read_text().replace("  seed: 42\n", "  seed: 42\n  extra_args: {warmup_stepz: 10}\n")
    (tmp_path / "mprtune.yaml").write_text(text)
    result = CliRunner().invoke(cli, ["render", "--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "llamafactory_configs/llama32_3b_grammar_lora.yaml: unknown LLaMA-Factory key(s)" in result.output
    assert "warmup_stepz" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "llamafactory_configs").exists()


def test_dataset_info_keys_llamafactory_would_ignore_are_errors(tmp_path: Path) -> None:
    info = {
        "_comment": "x",
        "ok": {"file_name": "a.jsonl"},
        "typo": {"file_name": "b.jsonl", "colums": {"prompt": "instruction"}},
        "nosource": {"formatting": "alpaca"},
        "badcol": {"file_name": "c.jsonl", "columns": {"promt": "x"}},
    }
    (tmp_path / "a.jsonl").write_text("{}\n")
    errors, warnings = check_dataset_info(json.dumps(info), "dataset_info.json", tmp_path)
    assert errors == [
        "dataset_info.json: typo.colums: LLaMA-Factory ignores this key (it reads cloud_file_name, columns, "
        "file_name, folder, formatting, hf_hub_url, ms_hub_url, num_samples, om_hub_url, ranking, script_url, "
        "split, subset, tags)",
        "dataset_info.json: nosource: needs one of file_name, hf_hub_url, ms_hub_url, om_hub_url, script_url, "
        "cloud_file_name",
        "dataset_info.json: badcol.columns.promt: LLaMA-Factory ignores this column role",
    ]
    assert len(warnings) == 1 and "(typo, badcol)" in warnings[0]


def test_dataset_info_tags_llamafactory_would_ignore_are_errors(tmp_path: Path) -> None:
    info = {"chat": {"file_name": "c.json", "formatting": "sharegpt", "tags": {"role": "r", "user_tag": "user"}}}
    errors, _ = check_dataset_info(json.dumps(info), "dataset_info.json", tmp_path)
    assert len(errors) == 1 and errors[0].startswith(
        "dataset_info.json: chat.tags.role: LLaMA-Factory ignores this tag"
    )
