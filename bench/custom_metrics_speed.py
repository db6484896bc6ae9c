"""How long does the custom kind take to score and compare 10,000 rows with 10,000 paired resamples?

Two custom tasks on synthetic rows (base and tuned outputs that differ on a share of rows):
- labels: 3 labels, the default label pipeline; accuracy, macro-F1, per-label F1, confusion,
  out-of-label (+ the form metrics every custom task has);
- JSON: a 2-field object answer with a JSON Schema; json_valid, json_match, field accuracy,
  chrF and ROUGE-L (+ the form metrics).
For each: `Custom.score` of both systems (per-row extraction, tags, statistics), then
`compare_scores` (10,000 shared resamples, intervals of both systems and the paired differences);
and the resample draw alone (`resample_counts`, the part of compare_scores every kind pays).
Wall and CPU seconds: on a shared machine the wall time follows the load, the CPU time much less.
Target (issue 19): compare_scores of each task within 10 s on this machine. Prints `metric: value`
lines last on stdout.

    .venv/bin/python bench/custom_metrics_speed.py [--smoke]
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import emit, log, parse_args, target  # noqa: E402
from mprtune.metrics.api import compare_scores  # noqa: E402
from mprtune.metrics.bootstrap import resample_counts  # noqa: E402
from mprtune.rows import Conversation  # noqa: E402
from mprtune.tasks.custom import Custom  # noqa: E402

LABELS = ["positive", "negative", "neutral"]
CITIES = ["Cairo", "Rome", "Lagos", "Lima", "Oslo", "Hanoi", "Quito", "Perth"]
TARGET_S = 10.0


def label_outputs(rnd: random.Random, gold: str, skill: float) -> str:
    roll = rnd.random()
    if roll < skill:
        return rnd.choice([gold, gold.capitalize() + ".", f"The sentiment is {gold}", f"Sure! {gold}"])
    if roll < skill + 0.05:
        return rnd.choice(["", "I cannot tell.", "mixed"])
    return rnd.choice([label for label in LABELS if label != gold])


def json_outputs(rnd: random.Random, gold: dict, skill: float) -> str:
    roll = rnd.random()
    if roll < skill:
        return rnd.choice(
            [json.dumps(gold), json.dumps(dict(reversed(list(gold.items())))), json.dumps(gold, indent=2)]
        )
    if roll < skill + 0.05:
        return rnd.choice(["", json.dumps(gold)[:20], f"city: {gold['city']}, date: {gold['date']}"])
    return json.dumps({"city": rnd.choice(CITIES), "date": gold["date"]})


def case(name: str, task: Custom, n: int, make_ref, make_out, resamples: int) -> list[tuple[str, float]]:
    rnd = random.Random(0)
    gold = [make_ref(rnd, i) for i in range(n)]
    refs = [g if isinstance(g, str) else json.dumps(g) for g in gold]
    rows = [task.eval_row({}, Conversation(f"input {i}", refs[i]), f"bench:{i}", str(i)) for i in range(n)]
    base = [make_out(rnd, g, 0.55) for g in gold]
    tuned = [make_out(rnd, g, 0.75) for g in gold]
    start, cpu = time.perf_counter(), time.process_time()
    scores = (task.score(rows, tuned), task.score(rows, base))
    score_s, score_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    result = compare_scores(*scores, n_resamples=resamples)
    compare_s, compare_cpu = time.perf_counter() - start, time.process_time() - cpu
    primary = task.presentation().primary
    log(f"{name}: {len(result['diff'])} metrics; {primary} diff {result['diff'][primary]}")
    return [
        (f"{name}_metrics", len(result["diff"])),
        (f"{name}_score_two_systems_s", score_s),
        (f"{name}_score_two_systems_cpu_s", score_cpu),
        (f"{name}_compare_scores_s", compare_s),
        (f"{name}_compare_scores_cpu_s", compare_cpu),
    ]


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    n, resamples = (200, 200) if args.smoke else (10_000, 10_000)
    labels = Custom({"labels": LABELS}, task="bench_labels")
    schema = {"type": "object", "required": ["city", "date"], "properties": {"city": {"type": "string"}}}
    structured = Custom(
        {"json_schema": schema, "metrics": ["json_valid", "json_match", "field_accuracy", "chrf", "rouge_l"]},
        task="bench_json",
    )
    results: list[tuple[str, float | int | str]] = [("rows", n), ("resamples", resamples)]
    results += case("labels", labels, n, lambda rnd, i: rnd.choice(LABELS), label_outputs, resamples)
    results += case(
        "json",
        structured,
        n,
        lambda rnd, i: {"city": rnd.choice(CITIES), "date": f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"},
        json_outputs,
        resamples,
    )
    start, cpu = time.perf_counter(), time.process_time()
    resample_counts(n, resamples, 0)  # the draw compare_scores makes first, shared by every metric
    results += [
        ("resample_counts_s", time.perf_counter() - start),
        ("resample_counts_cpu_s", time.process_time() - cpu),
    ]
    worst = max(float(v) for k, v in results if k.endswith("_compare_scores_s"))
    results.append(("slowest_compare_scores_s", worst))
    if not args.smoke:
        results.append(target("slowest_compare_scores_s", worst, "<=", TARGET_S))
    log(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    emit(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
