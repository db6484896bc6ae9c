"""File helpers every layer shares: atomic writes with ordinary permissions, and log tails."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

# Where a reader reports what it skipped (a damaged line, an unreadable status file): never fatal.
Warn = Callable[[str], None]


def quiet(message: str) -> None:
    """The default Warn: callers that show nothing."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: Path, target: Path, mode: int | None = None) -> Path:
    """Move a finished temporary file into place with ordinary permissions (mkstemp makes 0600)."""
    os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
    os.replace(tmp, target)
    return target


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write via a temporary file + rename, so a crash never leaves a half-written file.

    mkstemp creates 0600 files; the result gets `mode`, or what a plain `open()` would give
    (0666 minus the umask), so a report's PNG is as readable as the report beside it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        publish(Path(tmp), path, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a (possibly huge, possibly binary-damaged) log file."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
