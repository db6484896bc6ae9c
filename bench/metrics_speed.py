"""How long does scoring take, and how stable are the bootstrap bounds across seeds?

Scores JFLEG test (747 rows x 4 references; ../shared/data/jfleg or $MPRTUNE_JFLEG_DIR, else the
20 bundled sample rows) with mprtune.metrics: per-row tags, score_rows without and with CIs,
and compare_rows (two systems + paired diffs, one set of resamples), at 2,000 and 10,000
resamples; then the spread (max - min) of the GLEU interval bounds of the copied source over
several bootstrap seeds. Prints `metric: value` lines last on stdout.

    .venv/bin/python bench/metrics_speed.py [--smoke] [--seeds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mprtune.metrics import compare_rows, per_row, score_rows  # noqa: E402
from mprtune.metrics.tokens import detokenize  # noqa: E402


def load() -> tuple[list[str], list[list[str]], str]:
    folder = Path(os.environ.get("MPRTUNE_JFLEG_DIR") or ROOT.parent / "shared" / "data" / "jfleg")
    if not (folder / "test.src").is_file():
        folder, name = ROOT / "data" / "samples" / "raw" / "jfleg", "bundled samples"
    else:
        name = "JFLEG test"
    read = lambda f: [" ".join(line.split()) for line in (folder / f).read_text().splitlines()]
    return read("test.src"), [list(r) for r in zip(*(read(f"test.ref{k}") for k in range(4)), strict=False)], name


CPU: dict[str, float] = {}


def timed(fn, *args, **kwargs) -> float:
    """Wall seconds of one call; its CPU seconds (all threads) go to CPU under the same key:
    on a shared machine the wall time depends on the load, the CPU time much less."""
    start, cpu = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    CPU[getattr(fn, "__name__", "call")] = time.process_time() - cpu
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few rows and resamples: checks it runs")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    sources, references, name = load()
    resamples = (2000, 10000)
    if args.smoke:
        sources, references, resamples, args.seeds = sources[:20], references[:20], (200,), 2
    baseline = [detokenize(r[0]) for r in references]  # perfect, normal punctuation
    tuned = [s if i % 3 == 0 else r[0] for i, (s, r) in enumerate(zip(sources, references, strict=False))]
    per_row("grammar", baseline[:1], sources[:1], references[:1])  # import nltk outside the timings
    results: dict[str, float | int] = {"rows": len(sources)}
    results["per_row_s"] = timed(per_row, "grammar", baseline, sources, references)
    results["per_row_cpu_s"] = CPU["per_row"]
    results["score_no_ci_s"] = timed(score_rows, "grammar", baseline, sources, references, with_ci=False)
    results["score_no_ci_cpu_s"] = CPU["score_rows"]
    for n in resamples:
        results[f"score_ci_{n}_s"] = timed(score_rows, "grammar", baseline, sources, references, n_resamples=n)
        results[f"score_ci_{n}_cpu_s"] = CPU["score_rows"]
        results[f"compare_rows_{n}_s"] = timed(
            compare_rows, "grammar", tuned, baseline, sources, references, n_resamples=n
        )
        results[f"compare_rows_{n}_cpu_s"] = CPU["compare_rows"]
        bounds = [
            score_rows("grammar", sources, sources, references, seed=seed, n_resamples=n)["gleu"]
            for seed in range(args.seeds)
        ]
        results[f"gleu_low_spread_{n}_points"] = max(b["ci_low"] for b in bounds) - min(b["ci_low"] for b in bounds)
        results[f"gleu_high_spread_{n}_points"] = max(b["ci_high"] for b in bounds) - min(b["ci_high"] for b in bounds)
        print(f"{n} resamples done", file=sys.stderr)
    print(f"data: {name}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", file=sys.stderr)
    for key, value in results.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
