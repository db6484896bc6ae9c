"""The wheel installs and works WITHOUT extras: a clean venv, the built wheel, the commands that need
no LLaMA-Factory (help, render, score) and the report writer on a fixture.

Slow (a venv and its dependencies from the package index, about a minute with pip's cache); skipped
with the reason when the index cannot be reached.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from wheel_helpers import build_wheel

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args[:4])} ... exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding only the wheel and its declared dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(work)
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    installed = run(str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel), cwd=work, check=False)
    if installed.returncode != 0 and (
        "Could not find a version" in installed.stderr or "NewConnectionError" in installed.stderr
    ):
        pytest.skip("the package index is unreachable: cannot install the wheel's dependencies")
    assert installed.returncode == 0, installed.stderr[-3000:]
    return bin_dir


def test_the_wheel_carries_its_templates_and_declares_no_extra_for_the_core(installed: Path, tmp_path: Path) -> None:
    shown = run(
        str(installed / "python"),
        "-c",
        "import mprtune.config.render as r; print(sorted(p.name for p in r.TEMPLATES_DIR.glob('*.j2')))",
        cwd=tmp_path,
    ).stdout
    assert "train.yaml.j2" in shown and "report.md.j2" in shown
    missing = run(
        str(installed / "python"),
        "-c",
        "import importlib.util as u; print([m for m in ('torch', 'llamafactory', 'pytest') if u.find_spec(m)])",
        cwd=tmp_path,
    ).stdout
    assert missing.strip() == "[]", "the core install must not need torch, LLaMA-Factory or the dev tools"


def test_the_wheel_carries_every_module_of_the_package(installed: Path, tmp_path: Path) -> None:
    listed = run(
        str(installed / "python"),
        "-c",
        "import pathlib, mprtune; root = pathlib.Path(mprtune.__file__).parent;"
        " print('\\n'.join(sorted(str(p.relative_to(root)) for p in root.rglob('*.py'))))",
        cwd=tmp_path,
    ).stdout.split()
    package = ROOT / "mprtune"
    expected = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    assert sorted(listed) == expected


def test_help_render_and_score_work_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    mprtune = str(installed / "mprtune")
    assert "render" in run(mprtune, "--help", cwd=tmp_path).stdout
    run(
        mprtune,
        "render",
        "--config",
        str(ROOT / "mprtune.yaml"),
        "--out",
        str(tmp_path / "out"),
        "--no-lf-check",
        cwd=tmp_path,
    )
    assert len(list((tmp_path / "out" / "llamafactory_configs").glob("*.yaml"))) == 10
    (tmp_path / "hyp").write_text("She goes home.\nI have a cat.\n")
    (tmp_path / "src").write_text("she go home .\ni has cat .\n")
    (tmp_path / "ref").write_text("She goes home .\nI have a cat .\n")
    scored = run(
        mprtune,
        "score",
        "--task",
        "grammar",
        "--predictions",
        "hyp",
        "--source",
        "src",
        "--references",
        "ref",
        "--format",
        "json",
        cwd=tmp_path,
    ).stdout
    assert json.loads(scored)["exact_match"]["value"] == 1.0


def test_the_report_writer_works_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    shutil.copy(ROOT / "tests" / "report_fixture.py", fixture / "report_fixture.py")
    script = (
        "import sys; sys.path.insert(0, 'fixture'); import report_fixture; "
        "from mprtune.evaluate.report import write_report; "
        "files = write_report(report_fixture.results(), __import__('pathlib').Path('out'), "
        "report_fixture.LOSS_CURVES); print(files.report_md)"
    )
    run(str(installed / "python"), "-c", script, cwd=tmp_path)
    assert (tmp_path / "out" / "report.md").read_text().startswith("# mprtune comparison report")
    assert (tmp_path / "out" / "metrics.png").read_bytes()[:4] == b"\x89PNG"
