"""Where things live. Every location derives from the project root, so tests can relocate it.

`project_root()` is the one place that reads the environment and the cwd; everything else takes
the root as an argument (usually through a Workspace).
"""

from __future__ import annotations

import os
from pathlib import Path

from mprtune.errors import MprtuneError, show_path

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
NAME_MAX = 255  # bytes per path component on Linux file systems


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


def check_folder(folder: Path, what: str) -> Path:
    """`folder` as a place to create or use a folder; MprtuneError when it, or a parent, is a file.

    Without this, `--out README.md/x` reaches mkdir deep inside a command as NotADirectoryError.
    """
    folder = Path(folder)
    long = next((part for part in folder.parts if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX), None)
    if long is not None:
        raise MprtuneError(
            f"{what} {show_path(folder)}: a path component is longer than {NAME_MAX} bytes "
            f"({long[:40]}...); choose a shorter path"
        )
    for parent in (folder, *folder.parents):
        if parent.is_dir():
            break
        if parent.exists() or parent.is_symlink():
            raise MprtuneError(f"{what} {folder}: {parent} is a file, not a folder; choose another folder")
    return folder
