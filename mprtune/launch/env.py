"""The environment each job gets on top of the inherited one (secrets are inherited, never written)."""

from __future__ import annotations

import hashlib
import netrc
import os
import sys
from pathlib import Path

from mprtune.config.matrix import Matrix, Variant

# Library chatter that would otherwise flood the terminal and logs with progress bars and banners.
QUIET_ENV = {"DISABLE_VERSION_CHECK": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_SILENT": "true"}


def venv_bin() -> Path:
    """The folder of this interpreter's console scripts (llamafactory-cli, torchrun)."""
    return Path(sys.executable).parent


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """The user's WANDB_MODE, else online with a login and offline without one."""
    return os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")


def stable_run_id(matrix: Matrix, variant_name: str) -> str:
    """Same id for every attempt of a variant, so a resumed job continues the same W&B run."""
    digest = hashlib.sha1(f"{matrix.wandb_project}/{matrix.profile}/{variant_name}".encode()).hexdigest()[:8]
    return f"{variant_name}-{digest}"


def job_env(matrix: Matrix, variant: Variant, run_dir: Path) -> dict[str, str]:
    """What a training job adds to the inherited environment."""
    env = {
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",  # LLaMA-Factory shells out to torchrun
        "WANDB_PROJECT": matrix.wandb_project,
        "WANDB_RUN_GROUP": variant.sweep.sweep if variant.sweep else variant.task.name,  # a sweep's runs together
        "WANDB_NAME": variant.name,
        "WANDB_DIR": str(run_dir),
        "WANDB_RUN_ID": stable_run_id(matrix, variant.name),
        "WANDB_RESUME": "allow",
        "WANDB_MODE": wandb_mode(),
        **QUIET_ENV,
    }
    if variant.gpus > 1 or variant.nodes > 1 or variant.recipe.get("deepspeed"):
        # One process per GPU of the job; the backend adds a MASTER_PORT no other job of ours uses.
        # NPROC_PER_NODE is always set: LLaMA-Factory's default is the visible GPU count, 0 on a CPU.
        env.update({"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": str(variant.gpus)})
    if variant.nodes > 1:
        env["NNODES"] = str(variant.nodes)  # the node rank and master address come from Slurm, per job
    return env


def predict_env() -> dict[str, str]:
    """Prediction jobs log nothing to W&B (compare logs the comparison itself)."""
    return {"PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}", "WANDB_MODE": "disabled", **QUIET_ENV}
