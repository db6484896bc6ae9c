"""The `mprtune` command: a thin shell that parses options, calls the core, and prints.

Only this module turns domain errors into exit codes. Heavy modules (torch, transformers,
llamafactory) are imported inside the commands that need them, never at start-up.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click

from mprtune import paths
from mprtune.errors import MprtuneError


class UserError(click.ClickException):
    """A domain error shown as `Error: <line>` per problem, exit code 2 (1 for drift)."""

    def __init__(self, error: MprtuneError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code

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

    return wrapper


def config_option(command: Callable) -> Callable:
    command = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                           default=None, help="Experiment matrix (default: mprtune.yaml at the project root).")(command)
    return click.option("--profile", envvar=paths.PROFILE_ENV, default="reference", show_default=True,
                        help="Profile from the matrix, e.g. `demo` (env MPRTUNE_PROFILE).")(command)


def load(config_path: Path | None, profile: str):
    from mprtune.matrix import load_matrix

    return load_matrix(config_path or paths.default_matrix_path(), profile)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mprtune")
def cli() -> None:
    """Render, train, collect and compare a grid of LLaMA-Factory LoRA fine-tunes."""


@cli.command()
@config_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output root (default: the project root; other profiles: .mprtune/profiles/<name>).")
@click.option("--check", is_flag=True, help="Render in memory; exit 1 listing files that differ from disk.")
@click.option("--no-lf-check", is_flag=True, help="Skip the LLaMA-Factory parser check.")
@domain_errors
def render(config_path: Path | None, profile: str, out: Path | None, check: bool, no_lf_check: bool) -> None:
    """Render training/prediction YAMLs, dataset_info.json and DeepSpeed JSON from the matrix."""
    from mprtune.render import render_project

    matrix = load(config_path, profile)
    if out is None:
        out = paths.project_root() if profile == "reference" else paths.profile_render_dir(profile)
    outcome = render_project(matrix, out, check_only=check, lf_check=not no_lf_check,
                             cache_dir=paths.cache_dir())
    for warning in outcome.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if check:
        click.echo(f"{len(matrix.variants)} variants: rendered files match {matrix.source.name}")
    else:
        click.echo(f"Rendered {len(outcome.written)} files for {len(matrix.variants)} variants into {out}")


@cli.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--corpus", "corpus_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Text/JSONL files to train the tokenizer's merges on (repeatable).")
@domain_errors
def tiny_model(directory: Path, seed: int, corpus_files: tuple[Path, ...]) -> None:
    """Build a tiny random Llama with Llama-3 special tokens (CPU, seconds)."""
    from mprtune.tiny_model import TinyLlamaSpec, build_tiny_llama

    build_tiny_llama(directory, TinyLlamaSpec(seed=seed), list(corpus_files))
    click.echo(f"Tiny Llama written to {directory}")


def main() -> None:
    cli(prog_name="mprtune")


if __name__ == "__main__":
    sys.exit(main())
