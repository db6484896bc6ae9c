"""What every command shares: domain errors as one-line messages, common options, the workspace."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mprtune import paths
from mprtune.errors import MprtuneError, from_os_error

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class UserError(click.ClickException):
    """A domain error shown as `Error: <line>` per problem, exit code 2 (1 for drift)."""

    def __init__(self, error: MprtuneError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]  # click declares it per class; ours is per error

    def show(self, file: Any = None) -> None:
        for line in self.format_message().splitlines() or [""]:
            click.echo(f"Error: {line}", err=True)


def domain_errors(command: Callable) -> Callable:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MprtuneError as error:
            raise UserError(error) from None
        except OSError as error:  # a full disk, an unreadable path: one line, never a traceback
            raise UserError(from_os_error(error)) from None

    return wrapper


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def config_option(command: Callable) -> Callable:
    command = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Experiment matrix (default: mprtune.yaml at the project root).",
    )(command)
    return click.option(
        "--profile",
        envvar=paths.PROFILE_ENV,
        default=paths.REFERENCE_PROFILE,
        show_default=True,
        help="Profile from the matrix, e.g. `demo` (env MPRTUNE_PROFILE).",
    )(command)


def runs_option(command: Callable) -> Callable:
    return click.option(
        "--runs-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Run folders (default: runs/ at the project root, runs-<profile>/ for other "
        "profiles; env MPRTUNE_RUNS_DIR).",
    )(command)


def slot_options(command: Callable) -> Callable:
    command = click.option(
        "--slots", type=click.IntRange(min=1), default=None, help="Run N jobs side by side on the CPU, without GPUs."
    )(command)
    return click.option(
        "--gpus", default=None, help="GPU ids, one job per GPU, e.g. 0,1 (default: the matrix's hardware.gpus)."
    )(command)


def open_workspace(config_path: Path | None, profile: str, runs_dir: Path | None = None) -> Any:
    from mprtune.workspace import Workspace

    return Workspace.open(config_path, profile, runs_dir)


def chosen_variants(ws: Any, names: tuple[str, ...], all_: bool) -> list:
    if not names and not all_:
        raise MprtuneError("name the variants to run, or pass --all (known: " + ", ".join(ws.matrix.variants) + ")")
    return ws.select(names)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="mprtune")
def cli() -> None:
    """Render, train, collect and compare a grid of LLaMA-Factory LoRA fine-tunes."""
