#!/usr/bin/env python3
"""Benchmark 3: training throughput of the rendered defaults on the tiny model (CPU).

The recipe of `llama32_3b_grammar_lora` as mprtune renders it (LoRA rank/alpha/dropout/targets,
learning rate, schedule, batch 4 x accumulation 4, cutoff_len 256, no packing) is trained with
`llamafactory-cli train cfg.yaml` on the tiny Llama, CPU-only (bf16 off, report_to none), for the same
number of optimizer steps (100; 3 with --smoke) in five variations, one knob at a time:

  default     the rendered recipe (cutoff 256, 4 x 4, no packing)
  packing     + packing / neat_packing (rows concatenated into cutoff_len blocks, block-diagonal attention)
  cutoff128   cutoff_len sized to the data (128 >= the longest row)
  cutoff2048  cutoff_len 2048
  batch16x1   per-device batch 16 x accumulation 1 (the same 16 rows per optimizer step)

Data: data/samples/jfleg_train.jsonl repeated to 3000 rows (400 with --smoke), or synthetic
grammar rows when the sample is absent. samples/s is LLaMA-Factory's `train_samples_per_second`
(train_results.json), i.e. training sequences per second: with packing one sequence holds several
rows, so rows/s and tokens/s are derived from the dataset (tokens counted exactly as the llama3
template encodes each row, packed sequences counted from the trainer's `Num examples`).

LLaMA-Factory runs with one compute thread (OMP_NUM_THREADS=1, env BENCH_THREADS overrides): on a shared
2-core machine two torch threads wait on each other whenever anything else runs, and timings swing 3-4x.
"""

from __future__ import annotations

import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

VARIANT = "llama32_3b_grammar_lora"
NUM_EXAMPLES = re.compile(r"Num examples = ([\d,]+)")


def base_config(model: Path, steps: int) -> dict:
    """The rendered training recipe of VARIANT, made runnable on a CPU in a few seconds."""
    from mprtune.config.matrix import load_matrix
    from mprtune.config.render import cutoff_len

    matrix = load_matrix(c.ROOT / "mprtune.yaml")
    variant = matrix.variants[VARIANT]
    recipe = {k: v for k, v in variant.recipe.items() if k not in ("extra_args", "deepspeed", "flash_attn")}
    recipe.update(variant.recipe.get("extra_args", {}))
    config = {
        "model_name_or_path": str(model),
        "template": variant.model.template,
        "do_train": True,
        "dataset": "grammar",
        "dataset_dir": "data",
        "cutoff_len": cutoff_len(variant),
        **recipe,
        # CPU, benchmark-sized: same steps for every variation, no checkpoints, no W&B.
        "bf16": False,
        "report_to": "none",
        "max_steps": steps,
        "logging_steps": max(1, steps // 4),
        "save_steps": 100000,
        "plot_loss": False,
        "overwrite_output_dir": True,
        "preprocessing_num_workers": 1,
        "dataloader_num_workers": 0,
    }
    config.pop("num_train_epochs", None)
    return config


def main() -> int:
    args = c.parse_args(__doc__.splitlines()[1])
    steps = 3 if args.smoke else 100  # 20 steps last ~1 s on one thread: too short to time
    n_rows = 400 if args.smoke else 3000
    with c.Workdir("train", args.keep) as work:
        data, origin = c.grammar_data(
            work / "data" / "grammar.jsonl", n_rows, c.ROOT / "data" / "samples" / "jfleg_train.jsonl"
        )
        c.write_dataset_dir(work, {"grammar": data})
        c.log(f"data: {n_rows} rows from {origin}; building the tiny model")
        model = c.build_tiny(work / "model", [data])
        rows = c.read_jsonl(data)
        tokens = c.llama3_token_counts(model, rows)
        mean_tokens = sum(tokens) / len(tokens)

        base = base_config(model, steps)
        variations = {
            "default": {},
            "packing": {"packing": True, "neat_packing": True},
            "cutoff128": {"cutoff_len": 128},
            "cutoff2048": {"cutoff_len": 2048},
            "batch16x1": {"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1},
        }
        if args.smoke:  # the path end to end (incl. packed-sequence counting) in < 1 min; no comparisons
            variations = {k: variations[k] for k in ("default", "packing")}
        configs = {
            name: {**base, **extra, "output_dir": str(work / "out" / name)} for name, extra in variations.items()
        }

        def run(name: str) -> dict:
            c.log(f"training {name} ...")
            wall, rss = c.run_lf(work, configs[name], name)
            results = json.loads((work / "out" / name / "train_results.json").read_text())
            found = NUM_EXAMPLES.findall((work / f"{name}.log").read_text(errors="replace"))
            sequences = int(found[-1].replace(",", "")) if found else len(rows)
            cutoff = configs[name]["cutoff_len"]
            kept = sum(min(t, cutoff) for t in tokens)  # without packing LLaMA-Factory cuts rows at cutoff_len
            sps = float(results["train_samples_per_second"])
            rows_per_seq = len(rows) / sequences
            out = {
                "samples_per_s": sps,
                "rows_per_s": sps * rows_per_seq,
                "tokens_per_s": sps * kept / sequences,
                "sequences": sequences,
                "rows_per_sequence": rows_per_seq,
                "rss": rss,
                "wall": wall,
                "runtime": float(results["train_runtime"]),
                "loss": float(results.get("train_loss", "nan")),
            }
            c.log(
                f"  {name}: {sps:.2f} sequences/s, {out['rows_per_s']:.2f} rows/s, {out['tokens_per_s']:.0f} tokens/s, "
                f"{sequences} training sequences, peak RSS {rss / 2**20:.0f} MiB, wall {wall:.1f} s"
            )
            return out

        # The machine is shared: every variation runs `rounds` times, interleaved, and the fastest run
        # counts (other processes only ever slow a run down). --smoke only checks the path end to end:
        # one round, two at a time, numbers not meaningful.
        rounds = 1 if args.smoke else 3
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        with ThreadPoolExecutor(max_workers=2 if args.smoke else 1) as pool:
            for _ in range(rounds):
                for name, out in zip(configs, pool.map(run, configs), strict=False):
                    runs[name].append(out)
        res = {name: max(outs, key=lambda o: o["samples_per_s"]) for name, outs in runs.items()}
        spread = {
            name: max(o["samples_per_s"] for o in outs) / min(o["samples_per_s"] for o in outs)
            for name, outs in runs.items()
        }
        for name, outs in runs.items():
            per_round = " ".join(f"{o['samples_per_s']:.1f}" for o in outs)
            losses = " ".join(f"{o['loss']:.4f}" for o in outs)
            c.log(f"{name:<11} samples/s per round: {per_round}; train_loss {losses}")

    def compare(a: str, b: str, key: str) -> float | str:
        return c.ratio(res[a][key], res[b][key]) if a in res and b in res else "skipped (--smoke)"

    d, p = res["default"], res["packing"]
    c.emit(
        [
            ("data", origin),
            ("rows", len(rows)),
            ("optimizer_steps", steps),
            ("mean_row_tokens", mean_tokens),
            ("max_row_tokens", max(tokens)),
            ("rows_over_128_tokens", sum(t > 128 for t in tokens)),
            ("rows_per_packed_sequence cutoff256", p["rows_per_sequence"]),
            ("default samples_per_s", d["samples_per_s"]),
            ("default tokens_per_s", d["tokens_per_s"]),
            ("packing/no_packing samples_per_s", compare("packing", "default", "samples_per_s")),
            ("packing/no_packing rows_per_s", compare("packing", "default", "rows_per_s")),
            ("packing/no_packing tokens_per_s", compare("packing", "default", "tokens_per_s")),
            ("packing/no_packing peak_rss", compare("packing", "default", "rss")),
            ("cutoff128/cutoff2048 samples_per_s", compare("cutoff128", "cutoff2048", "samples_per_s")),
            ("cutoff128/cutoff2048 tokens_per_s", compare("cutoff128", "cutoff2048", "tokens_per_s")),
            ("cutoff128/default samples_per_s", compare("cutoff128", "default", "samples_per_s")),
            ("batch16x1/batch4x4 samples_per_s", compare("batch16x1", "default", "samples_per_s")),
            ("batch16x1/batch4x4 peak_rss", compare("batch16x1", "default", "rss")),
            ("default peak_rss_mib", d["rss"] / 2**20),
            ("rounds", rounds),
            ("noise max/min samples_per_s over rounds", max(spread.values())),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
