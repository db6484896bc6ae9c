#!/usr/bin/env python3
"""Benchmark 2: start-up cost of the `mprtune` CLI against a bare `import yaml, jinja2`.

Each command runs as a subprocess, N times round-robin (N=10, 3 with --smoke) after one warm-up
round; the median wall time of each is compared with the baseline `python -c "import yaml, jinja2"`:

- `mprtune --help`
- `mprtune render --no-lf-check --out TMP` (all ten variants of mprtune.yaml)

Target: <= 1.5x the baseline. When a target is missed the script also profiles the command
(`python -X importtime`, and an in-process breakdown of render's phases) and prints what is slow.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TARGET = 1.5

# Render's phases measured in one fresh interpreter (what `mprtune render --no-lf-check` does),
# printed as `key<TAB>milliseconds<TAB>description`.
PHASES = r"""
import sys, time
from pathlib import Path
marks = []
def mark(key, what, t0):
    marks.append((key, (time.perf_counter() - t0) * 1000, what))
t = time.perf_counter(); import click; mark("import_click", "import click (also paid by --help)", t)
t = time.perf_counter(); import yaml; mark("import_yaml", "import yaml (in the baseline)", t)
t = time.perf_counter(); import jinja2; mark("import_jinja2", "import jinja2 (in the baseline)", t)
t = time.perf_counter(); import importlib.metadata; mark("import_importlib_metadata", "import importlib.metadata (mprtune.config.lfcheck, module level)", t)
t = time.perf_counter(); import mprtune.cli; mark("import_mprtune_cli", "import mprtune.cli (own code)", t)
t = time.perf_counter()
from mprtune.config.matrix import load_matrix
from mprtune.config import lfcheck
from mprtune.config.render import render_matrix, dataset_info_json, write_files
mark("import_mprtune_matrix_render_lfcheck", "import mprtune.config.matrix/render/lfcheck (own code)", t)
t = time.perf_counter(); matrix = load_matrix(Path(sys.argv[1])); mark("load_matrix", "load_matrix: YAML parse (pure-Python SafeLoader) + validate", t)
text = Path(sys.argv[1]).read_text()
t = time.perf_counter(); yaml.load(text, Loader=yaml.SafeLoader); mark("yaml_safeloader_parse", "  of which: yaml.SafeLoader parse alone", t)
t = time.perf_counter(); yaml.load(text, Loader=yaml.CSafeLoader); mark("yaml_csafeloader_parse", "  the same parse with yaml.CSafeLoader (libyaml)", t)
t = time.perf_counter(); files = render_matrix(matrix); mark("render_matrix_first", "render_matrix, first call: Jinja compiles 3 templates + renders 32 files", t)
t = time.perf_counter(); render_matrix(matrix); mark("render_matrix_again", "render_matrix again: rendering only (templates cached)", t)
t = time.perf_counter()
lfcheck.check_dataset_info(dataset_info_json(matrix), "data/dataset_info.json", Path(sys.argv[2]) / matrix.data_dir)
write_files(files, Path(sys.argv[2]))
mark("check_and_write", "dataset_info check + write 32 files", t)
for key, ms, what in marks:
    print(f"{key}\t{ms:.1f}\t{what}")
"""


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=c.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def importtime(args: list[str], top: int = 12) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest imports of `python -X importtime -m mprtune ARGS`."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mprtune", *args], cwd=c.ROOT, capture_output=True, text=True
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth <= 1:  # top-level imports and their direct children
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    args = c.parse_args(__doc__.splitlines()[1])
    runs = 3 if args.smoke else 10
    mprtune = str(c.VENV_BIN / "mprtune")
    matrix = str(c.ROOT / "mprtune.yaml")
    with c.Workdir("cli", args.keep) as work:
        commands = {
            "baseline": [sys.executable, "-c", "import yaml, jinja2"],
            "help": [mprtune, "--help"],
            "render": [mprtune, "render", "--config", matrix, "--no-lf-check", "--out", str(work / "render")],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():  # warm-up: page cache, .pyc files
            wall(cmd)
        for _ in range(runs):
            for name, cmd in commands.items():
                times[name].append(wall(cmd))
        rendered = sum(1 for p in (work / "render").rglob("*") if p.is_file())
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, t in times.items():
            c.log(f"{name:<9} median {medians[name] * 1000:6.1f} ms  runs: {' '.join(f'{x * 1000:.0f}' for x in t)}")

        help_ratio = medians["help"] / medians["baseline"]
        render_ratio = medians["render"] / medians["baseline"]
        slow: list[tuple[str, str]] = []
        if help_ratio > TARGET or render_ratio > TARGET:
            for label, cli_args in (
                ("help", ["--help"]),
                ("render", ["render", "--config", matrix, "--no-lf-check", "--out", str(work / "profile")]),
            ):
                top = importtime(cli_args)
                c.log(f"\nslowest imports of `mprtune {' '.join(cli_args[:1])}` (cumulative, python -X importtime):")
                for us, module in top:
                    c.log(f"  {us / 1000:7.1f} ms  {module}")
                slow.append(
                    (
                        f"{label}_slowest_imports",
                        ", ".join(f"{m} {us / 1000:.0f}ms" for us, m in top[:6] if not m.startswith("encodings")),
                    )
                )
            phases = subprocess.run(
                [sys.executable, "-c", PHASES, matrix, str(work / "phases")], cwd=c.ROOT, capture_output=True, text=True
            )
            c.log("\nrender phases (one fresh interpreter):")
            for line in phases.stdout.splitlines():
                key, ms, what = line.split("\t")
                c.log(f"  {float(ms):7.1f} ms  {what}")
                slow.append((f"render_phase_ms {key}", float(ms)))
            if phases.returncode != 0:
                c.log(phases.stderr[-2000:])
        interpreter = statistics.median(wall([sys.executable, "-c", "pass"]) for _ in range(runs))

    c.emit(
        [
            ("runs", runs),
            ("files_rendered", rendered),
            ("baseline_ms", medians["baseline"] * 1000),
            ("bare_interpreter/baseline", interpreter / medians["baseline"]),
            ("help/baseline", help_ratio),
            ("render/baseline", render_ratio),
            *slow,
            c.target("help/baseline", help_ratio, "<=", TARGET),
            c.target("render/baseline", render_ratio, "<=", TARGET),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
