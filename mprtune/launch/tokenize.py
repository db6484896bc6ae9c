"""`python -m mprtune.launch.tokenize JOB_YAML TARGET`: tokenize a training job's dataset once, into TARGET.

Why: LLaMA-Factory 0.9.5 tokenizes inside every rank when `tokenized_path` is missing (on every node:
`main_process_first` is per node unless `data_shared_file_system`), and ranks that finish first wait
in a collective that times out. A multi-node job's batch script runs this once before any rank
starts; every node then loads TARGET (`tokenized_path`), which 0.9.5 reads as "tokenized" as soon as
the folder is non-empty. So it is written beside TARGET and renamed into place only when complete:
a kill halfway must never leave a half-written folder that the ranks would load. A requeued job
finds TARGET and reuses it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml


def tokenize(config: Path, target: Path) -> bool:
    """False when TARGET already holds a tokenized dataset (nothing done)."""
    if target.is_dir() and any(target.iterdir()):
        return False
    args = yaml.safe_load(config.read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    # Only the data arguments matter here; deepspeed and W&B would start what this process must not.
    for key in ("deepspeed", "resume_from_checkpoint"):
        args.pop(key, None)
    args.update(tokenized_path=str(work / "data"), output_dir=str(work / "output"), report_to="none")
    try:
        from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
        from llamafactory.hparams import get_train_args
        from llamafactory.model import load_tokenizer

        model_args, data_args, training_args, finetuning_args, _ = get_train_args(args)
        tokenizer_module = load_tokenizer(model_args)
        template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
        get_dataset(template, model_args, data_args, training_args, stage=finetuning_args.stage, **tokenizer_module)
        if target.exists():
            shutil.rmtree(target)  # an empty folder left by hand
        os.replace(work / "data", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m mprtune.launch.tokenize JOB_YAML TARGET", file=sys.stderr)
        return 2
    config, target = Path(argv[0]), Path(argv[1])
    done = tokenize(config, target)
    what = "tokenized the dataset into" if done else "reusing the tokenized dataset in"
    print(f"mprtune: {what} {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
