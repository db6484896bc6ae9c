"""Where a comparison's numbers come from: software versions, the project's commit, input checksums."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("mprtune", "llamafactory", "transformers", "peft", "torch")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(root: Path) -> str | None:
    """HEAD of the project's repository, with `-dirty` when tracked files have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def project_path(root: Path, path: str | Path) -> str:
    """`path` as the project names it: relative to `root` (POSIX), absolute only when it lies outside.

    A report names the same files on every machine and in every clone, whatever folder holds them.
    """
    absolute = Path(path).absolute()
    try:
        return absolute.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def provenance(root: Path, matrix_file: Path, eval_data: dict[str, str]) -> dict[str, object]:
    """The results' `provenance` block; `eval_data` maps each eval file to the sha256 of the rows used."""
    return {
        "versions": {package: _version(package) for package in PACKAGES},
        "git_commit": git_commit(root),
        "matrix_sha256": file_sha256(matrix_file),
        "eval_data_sha256": dict(sorted((project_path(root, path), sha) for path, sha in eval_data.items())),
    }
