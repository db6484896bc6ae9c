"""Jobs that span several Slurm nodes: the per-node step, what the partition offers, which node failed.

One `llamafactory-cli train` per node, started by one `srun` from the batch script. The resume point
is decided once, in the batch script (launch/resume.py runs before srun and appends the same
`resume_from_checkpoint=` to every node's command), and the dataset is tokenized once there too
(launch/tokenize.py), so the ranks only load it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from mprtune.io import tail
from mprtune.launch.jobs import JobPaths, JobSpec

TOKENIZED = "tokenized"  # folder in the run folder: LLaMA-Factory's `tokenized_path`
# Runs inside each step, so $SLURM_NODEID is that node's (expanded in the batch shell, every node
# would claim rank 0). It records the node's exit code: srun only says that *a* task failed.
STEP_SCRIPT = (
    'record=$1; shift; export NODE_RANK="$SLURM_NODEID"; '
    'echo "===== mprtune: node $SLURMD_NODENAME, rank $NODE_RANK of $NNODES, '
    'CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-}: $* ====="; '
    '"$@"; code=$?; echo "$SLURMD_NODENAME $code" > "$record$SLURM_NODEID.exit"; exit "$code"'
)


def node_log(folder: Path, rank: int | str) -> Path:
    return JobPaths(folder).node_log(rank)


def step_command(spec: JobSpec, cpus_per_task: int) -> list[str]:
    """`resume RUN -- llamafactory-cli train job.yaml` -> `resume RUN -- srun ... bash -c STEP tokenized_path=X`."""
    command = list(spec.command)
    cut = command.index("--") + 1 if "--" in command else 0
    srun = [
        "srun",
        "--kill-on-bad-exit=1",  # one node's failure ends every node's step, and the step fails the job
        f"--nodes={spec.nodes}",
        "--ntasks-per-node=1",
        f"--gres=gpu:{spec.width}",
        f"--cpus-per-task={cpus_per_task}",  # srun does not inherit sbatch's (Slurm >= 22.05): 1 CPU otherwise
        f"--output={node_log(spec.folder, '%n')}",  # %n: the node's index in the job, 0 = rank 0
        "--open-mode=append",
        "bash",
        "-c",
        STEP_SCRIPT,
        "mprtune-node",
        str(spec.folder / "node-"),
    ]
    return [*command[:cut], *srun, *command[cut:], f"tokenized_path={spec.folder / TOKENIZED}"]


def tokenize_command(spec: JobSpec) -> list[str]:
    """Run once in the batch script, before any rank: tokenizes into the run folder (kept across requeues)."""
    python = spec.command[0]
    return [python, "-m", "mprtune.launch.tokenize", str(spec.paths.config), str(spec.folder / TOKENIZED)]


def failed_node(folder: Path) -> str | None:
    """The node whose step failed first, with its log, from the exit records the steps wrote.

    --kill-on-bad-exit then kills the other nodes, whose records (if any) read 137/143, and a
    rank that loses its peer fails after it: the node that failed by itself, first, is the one to name.
    """
    records = []
    for path in sorted(folder.glob("node-*.exit")):
        rank = path.stem.split("-")[-1]
        parts = path.read_text(errors="replace").split()
        if len(parts) == 2 and parts[1].isdigit() and parts[1] != "0":
            records.append((parts[1] in ("137", "143"), path.stat().st_mtime_ns, rank, parts[0], parts[1]))
    if not records:
        logs = ", ".join(str(p) for p in JobPaths(folder).node_logs()) or "none written"
        return f"no node recorded an exit code (killed, or it failed before its step); node logs: {logs}"
    _, _, rank, name, code = min(records)
    return f"error on node {name} (rank {rank}, exit {code}); its log: {node_log(folder, rank)}"


def failure_logs(spec: JobSpec, lines: int) -> str:
    """The failed node's log tail, then the batch script's stderr, then the line naming the node."""
    note = failed_node(spec.folder) or ""
    match = re.search(r"rank (\d+)", note)
    node_tail = tail(node_log(spec.folder, match.group(1)), lines) if match else ""
    return f"{node_tail}\n{tail(spec.paths.stderr, lines // 2)}\nmprtune: {note}"


def gpu_count(gres: str) -> int:
    """`gpu:2`, `gpu:a100:8(S:0-1)`, `gpu:1,shard:4` -> GPUs; 0 when the node has none."""
    total = 0
    for part in gres.split(","):
        fields = re.sub(r"\(.*?\)", "", part).split(":")
        if fields[0] == "gpu" and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def partition_nodes(partition: str | None) -> tuple[str, dict[str, int]] | None:
    """(partition, {node: GPUs}) from sinfo (the default partition when none is given); None if sinfo fails."""
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%N|%P|%G"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    nodes: dict[str, dict[str, int]] = {}
    default = None
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3:
            continue
        name, part, gres = parts
        if part.endswith("*"):
            part = default = part[:-1]
        nodes.setdefault(part, {})[name] = gpu_count(gres)
    chosen = partition or default
    if chosen is None or chosen not in nodes:
        return None
    return chosen, nodes[chosen]


def fit_problems(specs: list[JobSpec], partition: str | None) -> list[str]:
    """Jobs the partition can never run (too many nodes, too many GPUs per node): one line each."""
    wide = [s for s in specs if s.nodes > 1 or s.width > 1]
    found = partition_nodes(partition) if wide else None
    if found is None:
        return []  # not on a login node or no such partition: sbatch says so itself
    name, nodes = found
    most_gpus = max(nodes.values(), default=0)
    problems = []
    for spec in wide:
        fitting = sum(1 for gpus in nodes.values() if gpus >= spec.width)
        if spec.nodes > len(nodes):
            problems.append(
                f"{spec.name}: nodes: {spec.nodes}, but partition {shlex.quote(name)} has {len(nodes)} node(s) "
                f"(sinfo): lower `nodes` or use --partition with a bigger one"
            )
        elif spec.width > most_gpus:
            problems.append(
                f"{spec.name}: gpus: {spec.width} per node, but the nodes of partition {shlex.quote(name)} "
                f"offer at most {most_gpus} (sinfo): lower `gpus` and raise `nodes` instead"
            )
        elif spec.nodes > fitting:
            problems.append(
                f"{spec.name}: {spec.nodes} nodes × {spec.width} GPUs, but only {fitting} node(s) of partition "
                f"{shlex.quote(name)} have {spec.width} GPUs (sinfo): lower `nodes` or `gpus`"
            )
    return problems
