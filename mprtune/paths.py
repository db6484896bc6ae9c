"""Where things live. Every location derives from the project root, so tests can relocate it."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ENV = "MPRTUNE_PROJECT_DIR"
RUNS_ENV = "MPRTUNE_RUNS_DIR"
PROFILE_ENV = "MPRTUNE_PROFILE"

MATRIX_FILE = "mprtune.yaml"
CONFIGS_DIR = "llamafactory_configs"
DATA_DIR = "data"
DATASET_INFO = "dataset_info.json"
STATE_DIR = ".mprtune"  # git-ignored: tiny models, profile renders, caches


def project_root() -> Path:
    """The folder holding mprtune.yaml: $MPRTUNE_PROJECT_DIR, else the nearest parent of the cwd."""
    env = os.environ.get(PROJECT_ENV)
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / MATRIX_FILE).is_file():
            return folder
    return here


def default_matrix_path() -> Path:
    return project_root() / MATRIX_FILE


def runs_dir_name(profile: str) -> str:
    """Each profile gets its own runs folder: a demo run must never pass for a finished reference run."""
    return "runs" if profile == "reference" else f"runs-{profile}"


def runs_dir(profile: str = "reference", override: str | os.PathLike[str] | None = None) -> Path:
    if override:
        return Path(override).resolve()
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).resolve()
    return project_root() / runs_dir_name(profile)


def profile_render_dir(profile: str) -> Path:
    """Non-reference profiles render here so they never overwrite the committed configs."""
    return project_root() / STATE_DIR / "profiles" / profile


def cache_dir() -> Path:
    """Verdict caches (e.g. the LLaMA-Factory config check); $MPRTUNE_CACHE_DIR relocates it."""
    env = os.environ.get("MPRTUNE_CACHE_DIR")
    return Path(env) if env else project_root() / STATE_DIR / "cache"
