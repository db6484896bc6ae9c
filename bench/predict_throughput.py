#!/usr/bin/env python3
"""Benchmark 4: batched generation vs batch 1 on LLaMA-Factory's predict path (tiny model, CPU).

`llamafactory-cli train cfg.yaml` with `do_predict: true`, `predict_with_generate: true`,
`do_sample: false` (greedy), `max_new_tokens: 32`, on 64 grammar rows (the distinct prompts of
the bundled JFLEG samples, topped up with synthetic ones), with `per_device_eval_batch_size`
1, 16 and 32 (--smoke: 16 rows, batch 1 and 8, 8 new tokens).

Reported: samples/s ratio (predict_results.json `predict_samples_per_second`, best of 2 runs) of
each batch size to batch 1, and whether the generated texts (generated_predictions.jsonl `predict`) are
identical across batch sizes. Batches are left-padded; when outputs differ, the differing rows
are listed (and shown on stderr) instead of failing.

LLaMA-Factory runs with one compute thread (OMP_NUM_THREADS=1, env BENCH_THREADS overrides): on a shared
2-core machine two torch threads wait on each other whenever anything else runs, and timings swing 3-4x.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c


def eval_rows(n: int) -> tuple[list[dict], str]:
    seen, rows = set(), []
    for name in ("jfleg_eval.jsonl", "jfleg_train.jsonl"):
        path = c.ROOT / "data" / "samples" / name
        if path.is_file():
            for row in c.read_jsonl(path):
                if row.get("instruction") and row["instruction"] not in seen:
                    seen.add(row["instruction"])
                    rows.append({"instruction": row["instruction"], "input": "", "output": row["output"]})
    sample = len(rows[:n])
    rows = rows[:n] + [r for r in c.grammar_rows(4 * n, seed=7) if r["instruction"] not in seen][: n - sample]
    return rows, f"{sample} bundled JFLEG sample prompts + {n - sample} synthetic"


def main() -> int:
    args = c.parse_args(__doc__.splitlines()[1])
    n_rows, batches, new_tokens = (16, [1, 8], 8) if args.smoke else (64, [1, 16, 32], 32)
    with c.Workdir("predict", args.keep) as work:
        rows, origin = eval_rows(n_rows)
        data = c.write_jsonl(work / "data" / "grammar_eval.jsonl", rows)
        c.write_dataset_dir(work, {"grammar_eval": data})
        c.log(f"data: {origin}; building the tiny model")
        model = c.build_tiny(work / "model", [data])
        prompt_tokens = c.llama3_token_counts(model, rows, prompt_only=True)

        def run(batch: int) -> tuple[dict, list[str]]:
            name = f"batch{batch}"
            out = work / "out" / name
            config = {
                "model_name_or_path": str(model),
                "template": "llama3",
                "finetuning_type": "lora",
                "stage": "sft",
                "do_predict": True,
                "predict_with_generate": True,
                "eval_dataset": "grammar_eval",
                "dataset_dir": "data",
                "cutoff_len": 256,
                "preprocessing_num_workers": 1,
                "output_dir": str(out),
                "overwrite_output_dir": True,
                "report_to": "none",
                "per_device_eval_batch_size": batch,
                "do_sample": False,
                "max_new_tokens": new_tokens,
                "bf16": False,
                "seed": 42,
            }
            c.log(f"predicting with batch {batch} ...")
            wall, _ = c.run_lf(work, config, name)
            results = json.loads((out / "predict_results.json").read_text())
            predictions = [
                json.loads(line)["predict"]
                for line in (out / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
            c.log(f"  batch {batch}: {results['predict_samples_per_second']} samples/s, wall {wall:.1f} s")
            return results, predictions

        # Shared machine: `rounds` interleaved runs per batch size, the fastest counts; every run's
        # outputs are compared. --smoke: one round, two at a time (numbers not meaningful).
        rounds = 1 if args.smoke else 2
        outcome: dict[int, tuple[dict, list[str]]] = {}
        with ThreadPoolExecutor(max_workers=2 if args.smoke else 1) as pool:
            for _ in range(rounds):
                for batch, (results, predictions) in zip(batches, pool.map(run, batches), strict=False):
                    if batch in outcome and outcome[batch][1] != predictions:
                        c.log(f"batch {batch}: outputs differ between two runs of the same batch size")
                        return 1
                    if batch not in outcome or float(results["predict_samples_per_second"]) > float(
                        outcome[batch][0]["predict_samples_per_second"]
                    ):
                        outcome[batch] = (results, predictions)

    base_results, base_predictions = outcome[1]
    if len(base_predictions) != len(rows):
        c.log(f"batch 1 wrote {len(base_predictions)} predictions for {len(rows)} rows")
        return 1
    lines: list[tuple[str, object]] = [
        ("rows", len(rows)),
        ("data", origin),
        ("max_new_tokens", new_tokens),
        ("mean_prompt_tokens", sum(prompt_tokens) / len(prompt_tokens)),
        ("min_max_prompt_tokens", f"{min(prompt_tokens)} {max(prompt_tokens)}"),
        ("mean_generated_chars", sum(map(len, base_predictions)) / len(base_predictions)),
    ]
    identical = True
    for batch in batches[1:]:
        results, predictions = outcome[batch]
        lines.append(
            (
                f"batch{batch}/batch1 samples_per_s",
                c.ratio(
                    float(results["predict_samples_per_second"]), float(base_results["predict_samples_per_second"])
                ),
            )
        )
        differ = [i for i, (a, b) in enumerate(zip(base_predictions, predictions, strict=False)) if a != b]
        differ += list(
            range(min(len(predictions), len(base_predictions)), max(len(predictions), len(base_predictions)))
        )
        if differ:
            identical = False
            c.log(f"\nbatch {batch}: {len(differ)} of {len(rows)} rows differ from batch 1 (left padding), e.g.")
            for i in differ[:3]:
                c.log(
                    f"  row {i} ({prompt_tokens[i]} prompt tokens): {rows[i]['instruction']!r}\n"
                    f"    batch 1:  {base_predictions[i]!r}\n"
                    f"    batch {batch}: {predictions[i] if i < len(predictions) else None!r}"
                )
        lines.append(
            (
                f"rows_differing batch{batch}",
                f"{len(differ)} of {len(rows)}"
                + (f" (rows {', '.join(map(str, differ[:20]))}{' ...' if len(differ) > 20 else ''})" if differ else ""),
            )
        )
    lines.append(("rounds", rounds))
    lines.append(("outputs_identical", identical))
    c.emit(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
