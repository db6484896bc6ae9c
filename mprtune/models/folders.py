"""Model folders mprtune creates: written atomically, marked as ours, and the only ones it replaces.

A marker file inside the folder records that mprtune made it (and from what). Replacing or
deleting a folder without the marker is refused: a user's checkpoint, a run folder or the data
dir must never be taken for a model cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mprtune.errors import MprtuneError
from mprtune.paths import check_folder

MARKER = ".mprtune-model.json"


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker mprtune wrote into a folder it created, or None (absent, unreadable, not ours)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("created_by") == "mprtune" else None


def check_replaceable(folder: Path) -> None:
    """Raise unless `folder` is absent, or a folder mprtune made (marked)."""
    folder = Path(folder)
    check_folder(folder, "model folder")
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_dir() and not folder.is_symlink() and read_marker(folder) is not None:
        return
    raise MprtuneError(
        f"{folder}: exists and was not created by mprtune (no {MARKER}); refusing to replace it. "
        f"Choose a new folder, or remove it yourself if it is really disposable"
    )


def replace_folder(folder: Path, write: Callable[[Path], None], marker: dict[str, Any]) -> Path:
    """Build the folder's contents in a staging folder beside it, mark it, then swap it into place."""
    folder = Path(folder)
    check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(staging)
        marker = {"created_by": "mprtune", **marker}
        (staging / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(staging, 0o755)  # mkdtemp makes 0700
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
