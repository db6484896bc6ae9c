#!/usr/bin/env python3
"""Run every benchmark in bench/ one after the other (`make bench`); `--smoke` is passed through.

Each script's progress goes to stderr as it runs; its result lines are echoed under a header, and a
summary says which scripts passed, failed or were skipped (bench/gpu.sh exits 77 without a GPU).
Exit status: 1 if any benchmark failed, else 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "scheduler.py",
    "cli_overhead.py",
    "train_throughput.py",
    "predict_throughput.py",
    "prepare_data.py",
    "gpu.sh",
]
SKIPPED = 77


def command(script: str, smoke: bool) -> list[str]:
    path = HERE / script
    cmd = ["bash", str(path)] if script.endswith(".sh") else [sys.executable, str(path)]
    return cmd + ["--smoke"] if smoke else cmd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, fast mode of every benchmark")
    parser.add_argument("only", nargs="*", help="run only these scripts (e.g. scheduler.py)")
    args = parser.parse_args()
    scripts = [s for s in SCRIPTS if not args.only or s in args.only or Path(s).stem in args.only]
    env_python = Path(sys.executable)
    sys.path.insert(0, str(HERE))
    from _common import machine

    info = machine()
    print(
        f"machine: nproc {info['nproc']}, RAM {info['ram']}, CPU {info['cpu']}; "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}{'; --smoke' if args.smoke else ''}",
        flush=True,
    )
    summary = []
    for script in scripts:
        print(f"\n=== {script}{' --smoke' if args.smoke else ''} ===", flush=True)
        start = time.perf_counter()
        env = {**os.environ, "PY": str(env_python)}  # gpu.sh: this interpreter's venv
        proc = subprocess.run(command(script, args.smoke), cwd=HERE.parent, stdout=subprocess.PIPE, text=True, env=env)
        elapsed = time.perf_counter() - start
        sys.stdout.write(proc.stdout)
        state = (
            "ok" if proc.returncode == 0 else "skipped" if proc.returncode == SKIPPED else f"FAILED ({proc.returncode})"
        )
        summary.append((script, state, elapsed))
    print("\n=== summary ===")
    for script, state, elapsed in summary:
        print(f"{script:<24} {state:<12} {elapsed:6.1f} s")
    return 1 if any(state.startswith("FAILED") for _, state, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
