"""Where things live. Every location derives from the project root, so tests can relocate it.

`project_root()` is the one place that reads the environment and the cwd; everything else takes
the root as an argument (usually through a Workspace).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ENV = "MPRTUNE_PROJECT_DIR"
RUNS_ENV = "MPRTUNE_RUNS_DIR"
PROFILE_ENV = "MPRTUNE_PROFILE"
CACHE_ENV = "MPRTUNE_CACHE_DIR"

MATRIX_FILE = "mprtune.yaml"
CONFIGS_DIR = "llamafactory_configs"
DATA_DIR = "data"
DATASET_INFO = "dataset_info.json"
REPORTS_DIR = "reports"
STATE_DIR = ".mprtune"  # git-ignored: models, profile renders, caches
REFERENCE_PROFILE = "reference"


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


def runs_dir_name(profile: str) -> str:
    """Each profile gets its own runs folder: a demo run must never pass for a finished reference run."""
    return "runs" if profile == REFERENCE_PROFILE else f"runs-{profile}"


def runs_dir(root: Path, profile: str = REFERENCE_PROFILE, override: str | os.PathLike[str] | None = None) -> Path:
    if override:
        return Path(override).resolve()
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).resolve()
    return root / runs_dir_name(profile)


def profile_render_dir(root: Path, profile: str) -> Path:
    """Non-reference profiles render here so they never overwrite the committed configs."""
    return root / STATE_DIR / "profiles" / profile


def models_dir(root: Path) -> Path:
    """Models mprtune builds or downloads itself (tiny test Llamas, converted registry models)."""
    return root / STATE_DIR / "models"


def cache_dir(root: Path) -> Path:
    """Verdict caches (e.g. the LLaMA-Factory config check); $MPRTUNE_CACHE_DIR relocates it."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else root / STATE_DIR / "cache"


def user_cache_dir() -> Path:
    """Caches that are safe to share between projects (compiled templates): $MPRTUNE_CACHE_DIR or XDG."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mprtune"
