#!/usr/bin/env python3
"""The arithmetic and config plumbing of bench/gpu.sh (see there). Two subcommands:

  configs WORK VARIANT STEPS ROWS   write WORK/train.yaml and WORK/predict.yaml from the matrix
                                    (the variant's rendered recipe, max_steps=STEPS, no checkpoints,
                                    no W&B; prediction of the tuned adapter on ROWS eval rows)
  report WORK GPU_NAME              print the result lines from WORK's outputs and memory samples

MFU = 6 x parameters x tokens / time / peak FLOP/s. 6 x N x tokens is the usual training cost
(forward 2N, backward 4N; for LoRA with gradient checkpointing, the frozen base skips its weight
gradients (-2N) but recomputes the forward (+2N)). Parameters come from the matrix (`models.*.params`),
tokens are the non-padding tokens of the training rows as the llama3 template encodes them (the
model's own tokenizer; ~chars/4 when it cannot be loaded), time is LLaMA-Factory's train_runtime.
Peak FLOP/s: dense bf16 tensor-core peak from PEAK_FLOPS below by GPU name; env PEAK_FLOPS overrides.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Dense bf16 peak FLOP/s (no sparsity), NVIDIA datasheets; first match wins, so specific names first.
PEAK_FLOPS = [
    ("H100 PCIe", 756e12),
    ("H200", 989e12),
    ("H100", 989e12),  # SXM
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10", 125e12),
]
SAMPLE_ROWS = 2000  # rows tokenized to measure tokens per row


def peak_flops(gpu_name: str) -> tuple[float | None, str]:
    if os.environ.get("PEAK_FLOPS"):
        return float(os.environ["PEAK_FLOPS"]), "env PEAK_FLOPS"
    for key, value in PEAK_FLOPS:
        if key.lower() in gpu_name.lower():
            return value, f"table: {key}, bf16 dense"
    return None, "unknown GPU: set PEAK_FLOPS"


def _matrix_and_variant(name: str):
    from mprtune.config.matrix import load_matrix
    from mprtune.paths import PROFILE_ENV

    matrix = load_matrix(ROOT / "mprtune.yaml", os.environ.get(PROFILE_ENV, "reference"))
    if name not in matrix.variants:
        sys.exit(f"gpu_helper: unknown variant {name!r} (known: {', '.join(matrix.variants)})")
    return matrix, matrix.variants[name]


def configs(work: Path, name: str, steps: int, rows: int) -> None:
    import yaml

    from mprtune.config.render import PredictSpec, predict_yaml, training_yaml
    from mprtune.models import ensure_base_models, resolved_path

    matrix, variant = _matrix_and_variant(name)
    data_dir = ROOT / matrix.data_dir
    missing = [
        matrix.datasets[d].file
        for d in (*variant.task.train, *variant.task.eval)
        if not (data_dir / matrix.datasets[d].file).is_file()
    ]
    if missing:
        sys.exit(
            f"gpu_helper: {', '.join(missing)} missing in {data_dir}: run "
            f"`mprtune prepare-data {variant.task.name}` first"
        )
    ensure_base_models(matrix, ROOT, [variant.model.name])  # tiny models of the demo profile only
    model = resolved_path(variant.model, ROOT)
    train = yaml.safe_load(
        training_yaml(matrix, variant, output_dir=str(work / "train"), data_dir=str(data_dir), model_path=model)
    )
    train.update(
        {
            "max_steps": steps,
            "save_steps": 10**6,
            "report_to": "none",
            "plot_loss": False,
            "overwrite_output_dir": True,
            "logging_steps": max(1, steps // 10),
        }
    )
    (work / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    spec = PredictSpec(variant.name, variant.model, variant.task, variant.name)
    predict = yaml.safe_load(
        predict_yaml(
            matrix,
            spec,
            output_dir=str(work / "predict"),
            adapter_dir=str(work / "train"),
            data_dir=str(data_dir),
            model_path=model,
            max_samples=rows,
        )
    )
    predict["overwrite_output_dir"] = True
    (work / "predict.yaml").write_text(yaml.safe_dump(predict, sort_keys=False))
    info = {
        "variant": variant.name,
        "model": model,
        "params": variant.model.params,
        "train_files": [str(data_dir / matrix.datasets[d].file) for d in variant.task.train],
        "template": variant.model.template,
        "rows_per_step": train.get("per_device_train_batch_size", 1) * train.get("gradient_accumulation_steps", 1),
        "steps": steps,
        "predict_rows": rows,
    }
    (work / "info.json").write_text(json.dumps(info, indent=2))


def _tokens_per_row(model: str, files: list[str]) -> tuple[float, str]:
    rows = []
    for file in files:
        with open(file, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    rows.append(json.loads(line))
                if len(rows) >= SAMPLE_ROWS:
                    break
    try:
        from _common import llama3_token_counts

        counts = llama3_token_counts(Path(model) if Path(model).exists() else model, rows)  # type: ignore[arg-type]
        return sum(counts) / len(counts), "tokenizer"
    except Exception as exc:  # gated/offline tokenizer: the planner's estimate
        print(f"gpu_helper: tokenizer unavailable ({type(exc).__name__}); tokens ~ chars/4 + 12", file=sys.stderr)
        chars = sum(len(r.get("instruction", "")) + len(r.get("input", "")) + len(r.get("output", "")) for r in rows)
        return chars / len(rows) / 4 + 12, "chars/4 estimate"


def _peak_mib(path: Path) -> float | None:
    try:
        values = [float(v) for v in path.read_text().split() if v.replace(".", "", 1).isdigit()]
    except OSError:
        return None
    return max(values) if values else None


def report(work: Path, gpu_name: str) -> None:
    info = json.loads((work / "info.json").read_text())
    train = json.loads((work / "train" / "train_results.json").read_text())
    predict = json.loads((work / "predict" / "predict_results.json").read_text())
    per_row, how = _tokens_per_row(info["model"], info["train_files"])
    samples_s = float(train["train_samples_per_second"])
    tokens_s = samples_s * per_row
    peak, peak_from = peak_flops(gpu_name)
    mfu = 6 * float(info["params"]) * tokens_s / peak if peak else None
    generated = [
        json.loads(line)["predict"]
        for line in (work / "predict" / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(info["model"])
        gen_tokens = sum(len(tok.encode(text, add_special_tokens=False)) for text in generated)
    except Exception:
        gen_tokens = sum(len(text) for text in generated) / 4
    lines = [
        ("gpu", gpu_name),
        ("variant", info["variant"]),
        ("train_steps", info["steps"]),
        ("train samples_per_s", f"{samples_s:.2f}"),
        ("train tokens_per_s", f"{tokens_s:.0f} ({per_row:.1f} tokens/row, {how})"),
        ("train peak_memory_mib", _peak_mib(work / "mem-train.txt")),
        ("peak_flops", f"{peak:.3g} ({peak_from})" if peak else peak_from),
        ("mfu", f"{mfu:.3g} ({100 * mfu:.1f}% of peak)" if mfu is not None else "unknown (set PEAK_FLOPS)"),
        ("predict_rows", len(generated)),
        ("predict samples_per_s", predict.get("predict_samples_per_second")),
        ("predict generated_tokens_per_s", f"{gen_tokens / float(predict['predict_runtime']):.0f}"),
        ("predict peak_memory_mib", _peak_mib(work / "mem-predict.txt")),
    ]
    for key, value in lines:
        print(f"{key}: {value}")


def main(argv: list[str]) -> int:
    if len(argv) >= 5 and argv[0] == "configs":
        configs(Path(argv[1]), argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) >= 3 and argv[0] == "report":
        report(Path(argv[1]), " ".join(argv[2:]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
