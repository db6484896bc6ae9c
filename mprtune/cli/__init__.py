"""The `mprtune` command: a thin shell that parses options, calls the core, and prints.

Only this package turns domain errors into exit codes and one-line messages (common.py). Heavy
modules (torch, transformers, llamafactory) are imported inside the commands that need them, never
at start-up. Commands live by theme: runs.py (render, plan, train, status, cancel, collect),
results.py (compare, score, demo), deploy.py (export, serve), data.py (prepare-data, tiny-model).
"""

from __future__ import annotations

from mprtune.cli.common import cli


def main() -> None:
    cli(prog_name="mprtune")


from mprtune.cli import data, deploy, results, runs  # noqa: E402,F401  (importing them registers the commands)

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
