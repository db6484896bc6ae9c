"""Commands about results: compare base vs tuned, score any outputs, the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mprtune import paths
from mprtune.cli.common import (
    chosen_variants,
    cli,
    config_option,
    domain_errors,
    open_workspace,
    runs_option,
    slot_options,
)


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every variant of the matrix.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N rows of each eval dataset.")
@slot_options
@click.option(
    "--reports-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where reports/<timestamp>/ go (default: reports/ at the project root).",
)
@runs_option
@config_option
@domain_errors
def compare(
    variants: tuple[str, ...],
    all_: bool,
    limit: int | None,
    gpus: str | None,
    slots: int | None,
    reports_dir: Path | None,
    runs_dir: Path | None,
    config_path: Path | None,
    profile: str,
) -> None:
    """Score base vs tuned on held-out data; write a report."""
    from mprtune.evaluate.compare import compare as run_compare
    from mprtune.launch import backends

    ws = open_workspace(config_path, profile, runs_dir)
    chosen = chosen_variants(ws, variants, all_)
    reports = paths.check_folder(reports_dir, "--reports-dir") if reports_dir else ws.reports_dir
    outcome = run_compare(
        ws,
        chosen,
        backends.from_options(ws.matrix, "local", gpus, slots),
        limit,
        reports,
        on_event=lambda e: click.echo(e.line()),
    )
    click.echo("\n".join(outcome.summary_lines()))
    click.echo(f"Report: {outcome.report_dir / 'report.md'}")


SCORE_HELP = """Score any system's outputs with compare's metrics.

\b
--predictions is a text file (one output per line) or LLaMA-Factory's own
generated_predictions.jsonl (`predict`, `label`). The rows come from the
task's eval file (--eval; for a task of the matrix and a generated_predictions.jsonl,
its eval datasets are used when --eval is not given), each prediction checked
against its row through the echoed label; or from line-aligned --source and
--references files. A custom task scores a generated_predictions.jsonl against
its own labels with nothing else.
"""


@cli.command(help=SCORE_HELP, short_help="Score any system's outputs with compare's metrics.")
@click.option(
    "--task", required=True, help="A task of the matrix (its kind and options), or grammar, paraphrase, knowledge."
)
@click.option(
    "--predictions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Outputs, one per line, or a generated_predictions.jsonl.",
)
@click.option(
    "--eval",
    "eval_files",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="The task's eval file(s) the predictions were made on (repeat in dataset order).",
)
@click.option(
    "--source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Inputs, one per line, aligned with the predictions (when there is no --eval).",
)
@click.option(
    "--references",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Reference file(s), one per line; repeat for several references (when there is no --eval).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="First N rows of each eval dataset (the predictions of `compare --limit N`).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--no-ci", is_flag=True, help="Skip the bootstrap confidence intervals.")
@click.option(
    "--row-kind",
    type=click.Choice(["qa", "description"]),
    default=None,
    help="Knowledge rows given as text: QA answers (exact match, F1) or descriptions (ROUGE-L).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Matrix whose task names --task may use (default: mprtune.yaml at the project root).",
)
@domain_errors
def score(
    task: str,
    predictions: Path,
    eval_files: tuple[Path, ...],
    source: Path | None,
    references: tuple[Path, ...],
    limit: int | None,
    fmt: str,
    no_ci: bool,
    row_kind: str | None,
    config_path: Path | None,
) -> None:
    from mprtune.evaluate.score import score_files
    from mprtune.views import score_table

    matrix = config_path or paths.project_root() / paths.MATRIX_FILE
    matrix_path = matrix if matrix.is_file() else None
    scores = score_files(
        task,
        predictions,
        source,
        list(references),
        with_ci=not no_ci,
        row_kind=row_kind,
        matrix_path=matrix_path,
        eval_files=list(eval_files),
        limit=limit,
    )
    click.echo(json.dumps(scores, indent=2, sort_keys=True) if fmt == "json" else "\n".join(score_table(scores)))


@cli.command()
@click.option("--slots", type=click.IntRange(min=1), default=2, show_default=True, help="CPU jobs side by side.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N eval rows per dataset.")
@domain_errors
def demo(slots: int, limit: int | None) -> None:
    """The whole pipeline on this CPU with the demo profile."""
    from mprtune.pipeline import run_demo

    try:
        report = run_demo(click.echo, slots, limit)
    except KeyboardInterrupt:
        click.echo("Interrupted: rerun `make demo` to resume where it stopped.", err=True)
        sys.exit(130)
    click.echo(f"Report: {report}")
