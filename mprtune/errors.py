"""Domain errors. Only the CLI turns them into exit codes and one-line messages."""

from __future__ import annotations

import errno
from pathlib import PurePath
from typing import Any

SHOWN_CHARS = 80  # a bad value quoted in an error line is cut to this length


def show(value: Any) -> str:
    """A value as an error message quotes it: repr, cut so a huge bad value gives a short line."""
    if isinstance(value, PurePath):
        return show_path(value)
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # ints beyond Python's str() limit, absurdly nested lists
        text = f"<{type(value).__name__}>"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def show_path(path: str | PurePath) -> str:
    """A path as an error message quotes it, cut at the FRONT: its last components name what is wrong.

    `'.../runs/grammar/missing'` says which folder is missing; a cut that kept the front would show
    the part that exists and drop the part that does not. Whole components are kept where they fit.
    """
    text = str(path)
    if len(repr(text)) <= SHOWN_CHARS:
        return repr(text)
    tail = text[-(SHOWN_CHARS - 5) :]  # room for the quotes and "..."
    cut = tail.find("/", 1)
    if 0 < cut <= 20:  # start at a component boundary when that costs little of what fits
        tail = tail[cut:]
    return "..." + repr(tail)


class MprtuneError(Exception):
    """Bad input or an impossible request: the CLI prints the message and exits 2."""

    exit_code = 2


class ConfigError(MprtuneError):
    """Every problem found in one configuration, reported together (one line each)."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))


class DataError(MprtuneError):
    """A malformed input row or file (`file:line: what is wrong`)."""


class LockError(MprtuneError):
    """Another `mprtune train` holds the runs directory."""


class DriftError(MprtuneError):
    """Rendered files on disk differ from the matrix (`render --check`)."""

    exit_code = 1


class DiskError(MprtuneError):
    """The machine, not the input: a full disk or an I/O error (free space or fix the disk, rerun)."""

    exit_code = 1


def from_os_error(error: OSError) -> MprtuneError:
    """One line for an OSError no domain check caught: the path, the reason, what to do."""
    name = str(error.filename or "")
    where = f"{name if len(name) <= 160 else name[:100] + '...' + name[-57:]}: " if name else ""
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskError(
            f"{where}{reason} (disk full); free space, then rerun: finished work is kept, unfinished runs resume"
        )
    if error.errno == errno.EIO:
        return DiskError(f"{where}{reason}; check the disk, then rerun")
    return MprtuneError(f"{where}{reason}; check the path and its permissions")
