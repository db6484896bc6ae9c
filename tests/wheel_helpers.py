"""Building mprtune's wheel from a clean copy of the checkout (shared by the packaging and new-user tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=1200, env=env)
    if check:
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def build_wheel(work: Path) -> Path:
    """The wheel of this checkout, built from a copy (build artefacts never land in the checkout)."""
    source = work / "source"
    # Top-level artefacts only: a pattern like "runs*" applied at every depth would drop mprtune/cli/runs.py.
    top_level_artefacts = shutil.ignore_patterns(
        ".venv", ".git", ".mprtune", "runs", "runs-*", "reports", "*.egg-info", "build", "dist"
    )

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name == "__pycache__"}
        return skipped | (top_level_artefacts(folder, names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, source, ignore=ignore)
    built = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        str(work / "dist"),
        str(source),
        cwd=work,
        check=False,
    )
    if built.returncode != 0 and "Could not find a version" in built.stderr + built.stdout:
        pytest.skip("the package index is unreachable: cannot build the wheel in isolation")
    assert built.returncode == 0, built.stderr[-3000:]
    return next((work / "dist").glob("mprtune-*.whl"))
