"""`python -m mprtune.launch.resume RUN_DIR -- llamafactory-cli train job.yaml`: start a training job
from its newest COMPLETE checkpoint, decided when the job starts.

Deciding at start time (not when `train` plans) matters on a cluster: Slurm requeues a preempted job
by rerunning its script, without mprtune. A kill during a save leaves a half-written newest
checkpoint, and LLaMA-Factory (like the Trainer) picks the highest-numbered `checkpoint-N` on its own
and fails on it every time. So first the damaged newer checkpoints are set aside (renamed to
`damaged-checkpoint-N`: kept for inspection, invisible to the Trainer's `checkpoint-*` search), then
the command runs with `resume_from_checkpoint=` the newest complete one, if any.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mprtune.launch.jobs import JobPaths
from mprtune.launch.state import resume_point

SET_ASIDE_PREFIX = "damaged-"


def set_aside_damaged(run_dir: Path) -> tuple[Path | None, list[str]]:
    """(newest complete checkpoint, one line per damaged newer checkpoint renamed out of the way)."""
    point = resume_point(JobPaths(run_dir))
    notes = []
    for folder, why in point.skipped:
        target = folder.with_name(SET_ASIDE_PREFIX + folder.name)
        suffix = 1
        while target.exists():
            suffix += 1
            target = folder.with_name(f"{SET_ASIDE_PREFIX}{folder.name}.{suffix}")
        folder.rename(target)
        notes.append(f"mprtune: set aside {folder.name} ({why}) as {target.name}")
    return point.checkpoint, notes


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m mprtune.launch.resume RUN_DIR -- COMMAND...", file=sys.stderr)
        return 2
    checkpoint, notes = set_aside_damaged(Path(argv[0]))
    for note in notes:
        print(note, flush=True)
    command = argv[2:] + ([f"resume_from_checkpoint={checkpoint}"] if checkpoint is not None else [])
    print(
        f"mprtune: {'resuming from ' + checkpoint.name if checkpoint else 'starting'}: {' '.join(command)}", flush=True
    )
    os.execvp(command[0], command)  # a multi-node job runs `srun` here, found on PATH
    return 127  # execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
