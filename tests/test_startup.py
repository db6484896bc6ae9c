"""`mprtune --help` and `mprtune render` never import torch, transformers or llamafactory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys
from click.testing import CliRunner
from mprtune.cli import cli
for args in {args!r}:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
heavy = sorted(m for m in ("torch", "transformers", "llamafactory", "datasets") if m in sys.modules)
print("HEAVY:", heavy)
"""


def run_probe(args: list[list[str]], cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)], cwd=cwd, capture_output=True, text=True, check=True
    )
    return proc.stdout


def test_help_and_render_do_not_import_torch(tmp_path: Path) -> None:
    out = run_probe(
        [
            ["--help"],
            ["render", "--help"],
            ["render", "--config", str(ROOT / "mprtune.yaml"), "--out", str(tmp_path), "--no-lf-check"],
        ],
        cwd=ROOT,
    )
    assert "HEAVY: []" in out, out


def test_render_with_the_llamafactory_check_keeps_torch_in_a_child_process(tmp_path: Path) -> None:
    # The check itself imports LLaMA-Factory, but only in a subprocess: this process stays light.
    out = run_probe([["render", "--config", str(ROOT / "mprtune.yaml"), "--out", str(tmp_path)]], cwd=ROOT)
    assert "HEAVY: []" in out, out
