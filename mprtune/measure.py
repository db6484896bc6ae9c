"""`python -m mprtune.measure CONFIG.yaml`: run LLaMA-Factory in this process and record its peak memory.

Prediction jobs go through LLaMA-Factory's own `run_exp` exactly as `llamafactory-cli train CONFIG`
does for a single device; running it in-process lets us read the peak GPU memory (torch) or the
peak RSS (CPU) of the job itself, which LLaMA-Factory does not report.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

MEASURE_FILE = "mprtune-measure.json"


def main(argv: list[str]) -> int:
    config = Path(argv[0])
    sys.argv = ["llamafactory-cli", str(config), *argv[1:]]
    from llamafactory.train.tuner import run_exp

    import torch

    started = time.perf_counter()
    run_exp()
    wall = time.perf_counter() - started
    on_gpu = torch.cuda.is_available()
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if on_gpu
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    folder = config.parent
    (folder / MEASURE_FILE).write_text(json.dumps(
        {"wall_seconds": wall, "peak_memory_mb": peak_mb, "memory_kind": "gpu" if on_gpu else "rss"}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
