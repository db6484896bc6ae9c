"""Does scoring through the task-kind plugins cost anything? Old scorer vs new, same rows, same run.

Scores JFLEG test (747 rows x 4 references; ../shared/data/jfleg or $MPRTUNE_JFLEG_DIR, else the
20 bundled sample rows) as `compare` does: two systems, per-row tags, every metric with 10,000 paired
resamples. "old" is the scorer before task kinds became plugins (mprtune.metrics.compare_rows of
git revision OLD_REVISION, extracted into a temporary folder and run in its own process), "new" is
this tree's path (the kind's `score` twice + `metrics.api.compare_scores`). Each side runs `--repeat`
times alternately in fresh processes; the ratio is of the medians. The two must agree on every
number. Prints `metric: value` lines last on stdout.

    .venv/bin/python bench/kinds_speed.py [--smoke] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_REVISION = "b57caf6"  # the last commit before mprtune/tasks/ (issue 19)

WORKER = r"""
import json, os, sys, time
from pathlib import Path
folder = Path(sys.argv[1]); side = sys.argv[2]; limit = int(sys.argv[3]); resamples = int(sys.argv[4])
read = lambda f: [" ".join(line.split()) for line in (folder / f).read_text().splitlines()][:limit]
sources = read("test.src"); references = [list(r) for r in zip(*(read(f"test.ref{k}") for k in range(4)))]
from mprtune.metrics.tokens import detokenize
baseline = [detokenize(r[0]) for r in references]
tuned = [s if i % 3 == 0 else r[0] for i, (s, r) in enumerate(zip(sources, references))]
if side == "old":
    from mprtune.metrics import compare_rows
    compare_rows("grammar", tuned[:2], baseline[:2], sources[:2], references[:2], n_resamples=10)  # imports
    start = time.perf_counter()
    out = compare_rows("grammar", tuned, baseline, sources, references, n_resamples=resamples)
else:
    from mprtune.metrics.api import compare_scores
    from mprtune.rows import EvalRow
    from mprtune.tasks import resolve_kind
    kind = resolve_kind("grammar")(task="grammar")
    pairs = enumerate(zip(sources, references))
    rows = [EvalRow(str(i), s, tuple(r), "grammar", "Fix: " + s, r[0]) for i, (s, r) in pairs]
    compare_scores(kind.score(rows[:2], tuned[:2]), kind.score(rows[:2], baseline[:2]), n_resamples=10)
    start = time.perf_counter()
    out = compare_scores(kind.score(rows, tuned), kind.score(rows, baseline), n_resamples=resamples)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "scores": {k: out[k] for k in ("baseline", "tuned", "diff")}}))
"""


def jfleg() -> tuple[Path, str]:
    folder = Path(os.environ.get("MPRTUNE_JFLEG_DIR") or ROOT.parent / "shared" / "data" / "jfleg")
    if (folder / "test.src").is_file():
        return folder, "JFLEG test"
    return ROOT / "data" / "samples" / "raw" / "jfleg", "bundled samples"


def old_tree(into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", OLD_REVISION, "mprtune"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run(side: str, path: Path, folder: Path, limit: int, resamples: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(folder), side, str(limit), str(resamples)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="20 rows, 200 resamples, one repeat: checks it runs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder, name = jfleg()
    limit, resamples, repeat = (20, 200, 1) if args.smoke else (10**6, 10_000, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            old = old_tree(Path(tmp))
        except (subprocess.CalledProcessError, OSError):  # a shallow clone without the old revision
            print(f"revision {OLD_REVISION} is not in this clone: nothing to compare with", file=sys.stderr)
            print("new_over_old: n/a")
            return 0
        times: dict[str, list[float]] = {"old": [], "new": []}
        scores = {}
        for _ in range(repeat):
            for side, path in (("old", old), ("new", ROOT)):
                found = run(side, path, folder, limit, resamples)
                times[side].append(found["seconds"])
                scores[side] = found["scores"]
    same = json.dumps(scores["old"], sort_keys=True) == json.dumps(scores["new"], sort_keys=True)
    old_s, new_s = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"rows: {name}", file=sys.stderr)
    print(f"old_seconds: {old_s:.3f}")
    print(f"new_seconds: {new_s:.3f}")
    print(f"new_over_old: {new_s / old_s:.3f}")
    print(f"identical_scores: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
