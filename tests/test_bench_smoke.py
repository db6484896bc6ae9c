"""Every benchmark in bench/ still runs end to end (`--smoke`) and ends with `metric: value` lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULT_LINE = re.compile(r"^[\w/ .-]+: .+$")
# Every Python benchmark (jfleg_real.py --smoke: the tiny model on the bundled JFLEG-format samples,
# the same pipeline); gpu.sh has its own test below, _common.py and gpu_helper.py are libraries.
SCRIPTS = sorted(
    p.name for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name not in ("run_all.py", "gpu_helper.py")
)


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_smoke(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    lines = proc.stdout.splitlines()
    assert lines, f"{script} printed no result lines; stderr:\n{proc.stderr[-2000:]}"
    bad = [line for line in lines if not RESULT_LINE.match(line)]
    assert not bad, f"{script}: stdout lines that are not `metric: value`: {bad}"


def test_gpu_script_says_clearly_that_there_is_no_gpu(tmp_path: Path) -> None:
    # Hide nvidia-smi whether or not this machine has one.
    path = os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "nvidia-smi").exists()
    )
    proc = subprocess.run(
        ["bash", str(BENCH / "gpu.sh"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "PY": sys.executable},
        timeout=60,
    )
    assert proc.returncode == 77, proc.stderr
    assert "no NVIDIA GPU" in proc.stderr and proc.stdout == ""
