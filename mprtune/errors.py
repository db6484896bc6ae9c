"""Domain errors. Only the CLI turns them into exit codes and one-line messages."""

from __future__ import annotations


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
