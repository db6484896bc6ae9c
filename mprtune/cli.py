"""The `mprtune` command: a thin shell that parses options, calls the core, and prints.

Only this module turns domain errors into exit codes and one-line messages. Heavy modules (torch,
transformers, llamafactory) are imported inside the commands that need them, never at start-up.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from mprtune import paths
from mprtune.errors import MprtuneError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


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


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def config_option(command: Callable) -> Callable:
    command = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                           default=None, help="Experiment matrix (default: mprtune.yaml at the project root).")(command)
    return click.option("--profile", envvar=paths.PROFILE_ENV, default=paths.REFERENCE_PROFILE, show_default=True,
                        help="Profile from the matrix, e.g. `demo` (env MPRTUNE_PROFILE).")(command)


def runs_option(command: Callable) -> Callable:
    return click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Run folders (default: runs/ at the project root, runs-<profile>/ for other "
                             "profiles; env MPRTUNE_RUNS_DIR).")(command)


def slot_options(command: Callable) -> Callable:
    command = click.option("--slots", type=click.IntRange(min=1), default=None,
                           help="Run N jobs side by side on the CPU, without GPUs.")(command)
    return click.option("--gpus", default=None,
                        help="GPU ids, one job per GPU, e.g. 0,1 (default: the matrix's hardware.gpus).")(command)


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


@cli.command()
@config_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output root (default: the project root; other profiles: .mprtune/profiles/<name>).")
@click.option("--check", is_flag=True, help="Render in memory; exit 1 listing files that differ from disk.")
@click.option("--no-lf-check", is_flag=True, help="Skip the LLaMA-Factory parser check.")
@domain_errors
def render(config_path: Path | None, profile: str, out: Path | None, check: bool, no_lf_check: bool) -> None:
    """Render every file LLaMA-Factory reads.

    Training and prediction YAMLs, dataset_info.json and DeepSpeed JSON, checked with
    LLaMA-Factory's own parser.
    """
    from mprtune.config.render import render_project

    ws = open_workspace(config_path, profile)
    out = out or ws.render_dir
    outcome = render_project(ws.matrix, out, ws.data_dir, check_only=check, lf_check=not no_lf_check,
                             cache_dir=ws.cache_dir)
    for message in outcome.warnings:
        warn(message)
    if check:
        click.echo(f"{len(ws.matrix.variants)} variants: rendered files match {ws.matrix.source.name}")
    else:
        click.echo(f"Rendered {len(outcome.written)} files for {len(ws.matrix.variants)} variants into {out}")


@cli.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--corpus", "corpus_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Text/JSONL files to train the tokenizer's merges on (repeatable).")
@domain_errors
def tiny_model(directory: Path, seed: int, corpus_files: tuple[Path, ...]) -> None:
    """Build a tiny random Llama for tests (CPU, seconds)."""
    from mprtune.models.tiny import build_log, build_tiny_llama_logged

    build_tiny_llama_logged(directory, seed, list(corpus_files))
    click.echo(f"Tiny Llama written to {directory} (build log: {build_log(directory)})")


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every variant of the matrix.")
@slot_options
@click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
              help="Relaunches (resuming from the newest complete checkpoint) before a job counts as failed.")
@click.option("--dry-run", is_flag=True, help="Print the plan, commands and environment; launch nothing.")
@click.option("--backend", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--partition", default=None, help="Slurm partition.")
@click.option("--time", "time_limit", default=None, help="Slurm time limit HH:MM:SS.")
@click.option("--account", default=None, help="Slurm account.")
@click.option("--sbatch-arg", "sbatch_args", multiple=True, help="Extra sbatch argument (repeatable).")
@click.option("--detach", is_flag=True, help="Slurm: return right after submission.")
@runs_option
@config_option
@domain_errors
def train(variants: tuple[str, ...], all_: bool, gpus: str | None, slots: int | None, retries: int,
          dry_run: bool, backend: str, partition: str | None, time_limit: str | None, account: str | None,
          sbatch_args: tuple[str, ...], detach: bool, runs_dir: Path | None, config_path: Path | None,
          profile: str) -> None:
    """Train variants: longest first, one job per slot, resuming."""
    from mprtune.launch import backends
    from mprtune.launch import train as launch
    from mprtune.views import Progress, detach_lines, failure_lines, plan_lines, train_summary

    ws = open_workspace(config_path, profile, runs_dir)
    chosen = chosen_variants(ws, variants, all_)
    executor = backends.from_options(ws.matrix, backend, gpus, slots, check_devices=not dry_run,
                                     partition=partition, time_limit=time_limit, account=account,
                                     sbatch_args=list(sbatch_args), detach=detach)
    if dry_run:
        plan = launch.plan_training(ws, chosen, executor.slots() or ["cluster"], warn)
        for message in plan.warnings + backends.device_warnings(ws.matrix, gpus, slots, backend):
            warn(message)
        click.echo("\n".join(plan_lines(plan, executor, show_commands=True)))
        return
    try:
        with Progress(ws, [v.name for v in chosen], echo=click.echo) as progress:
            results = launch.train(ws, chosen, executor, retries, progress.event,
                                   on_plan=lambda plan: progress.show_plan(plan, executor))
    except KeyboardInterrupt:
        click.echo("Interrupted: running jobs were stopped and are resumable; rerun the same command.", err=True)
        sys.exit(130)
    if detach:
        click.echo("\n".join(detach_lines(results)))
        return
    failed = failure_lines(results)
    for line in failed:
        click.echo(line, err=True)
    click.echo(train_summary(progress.plan, results, ws.runs))
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("variants", nargs=-1)
@slot_options
@runs_option
@config_option
@domain_errors
def plan(variants: tuple[str, ...], gpus: str | None, slots: int | None, runs_dir: Path | None,
         config_path: Path | None, profile: str) -> None:
    """Show the schedule and every command; launch nothing."""
    from mprtune.launch import backends
    from mprtune.launch.train import plan_training
    from mprtune.views import plan_lines

    ws = open_workspace(config_path, profile, runs_dir)
    chosen = ws.select(variants)
    executor = backends.from_options(ws.matrix, "local", gpus, slots, check_devices=False)
    result = plan_training(ws, chosen, executor.slots() or ["cluster"], warn)
    for message in result.warnings + backends.device_warnings(ws.matrix, gpus, slots, "local"):
        warn(message)
    click.echo("\n".join(plan_lines(result, executor, show_commands=True)))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A list of objects, one per variant.")
@click.option("--watch", is_flag=True, help="Refresh every 2 seconds until interrupted.")
@runs_option
@config_option
@domain_errors
def status(as_json: bool, watch: bool, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Per variant: state, slot, step, loss, ETA, retries, log."""
    import time

    from mprtune.launch.status import status_rows
    from mprtune.views import status_table

    ws = open_workspace(config_path, profile, runs_dir)
    while True:
        rows = status_rows(ws, warn)
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2) if as_json else status_table(rows))
        if not watch:
            return
        time.sleep(2)
        click.clear()


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every running variant.")
@runs_option
@config_option
@domain_errors
def cancel(variants: tuple[str, ...], all_: bool, runs_dir: Path | None, config_path: Path | None,
           profile: str) -> None:
    """Stop running jobs (they stay resumable)."""
    from mprtune.launch.train import cancel_jobs

    ws = open_workspace(config_path, profile, runs_dir)
    done = cancel_jobs(ws, chosen_variants(ws, variants, all_))
    click.echo(f"Cancelled: {', '.join(done)}" if done else "Nothing running to cancel.")


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where collect.json, collect.csv and loss_curves.png go (default: the runs dir).")
@runs_option
@config_option
@domain_errors
def collect(out: Path | None, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Inventory of the runs, with loss curves."""
    from mprtune.launch.inventory import collect as collect_all
    from mprtune.views import collect_table

    ws = open_workspace(config_path, profile, runs_dir)
    records, written = collect_all(ws, out or ws.runs, warn)
    click.echo("\n".join(collect_table(records)))
    click.echo("Wrote " + ", ".join(str(p) for p in written))


@cli.command()
@click.argument("variant")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New folder for the merged model (not inside the runs dir).")
@click.option("--device", type=click.Choice(["cpu", "auto"]), default="cpu", show_default=True)
@runs_option
@config_option
@domain_errors
def export(variant: str, out: Path, device: str, runs_dir: Path | None, config_path: Path | None,
           profile: str) -> None:
    """Merge VARIANT's adapter into its base model."""
    from mprtune.launch.export import export_variant

    ws = open_workspace(config_path, profile, runs_dir)
    click.echo(f"Merged model written to {export_variant(ws, variant, out, device)}")


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every variant of the matrix.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N rows of each eval dataset.")
@slot_options
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where reports/<timestamp>/ go (default: reports/ at the project root).")
@runs_option
@config_option
@domain_errors
def compare(variants: tuple[str, ...], all_: bool, limit: int | None, gpus: str | None, slots: int | None,
            reports_dir: Path | None, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Score base vs tuned on held-out data; write a report."""
    from mprtune.evaluate.compare import compare as run_compare
    from mprtune.launch import backends

    ws = open_workspace(config_path, profile, runs_dir)
    chosen = chosen_variants(ws, variants, all_)
    outcome = run_compare(ws, chosen, backends.from_options(ws.matrix, "local", gpus, slots), limit,
                          reports_dir or ws.reports_dir, on_event=lambda e: click.echo(e.line()))
    click.echo("\n".join(outcome.summary_lines()))
    click.echo(f"Report: {outcome.report_dir / 'report.md'}")


@cli.command()
@click.option("--task", required=True, help="grammar, paraphrase, knowledge, or a task name from the matrix.")
@click.option("--predictions", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="System outputs, one per line.")
@click.option("--source", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Inputs, one per line, aligned with the predictions.")
@click.option("--references", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              required=True, help="Reference file(s), one per line; repeat for several references.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--no-ci", is_flag=True, help="Skip the bootstrap confidence intervals.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Matrix whose task names --task may use (default: mprtune.yaml at the project root).")
@domain_errors
def score(task: str, predictions: Path, source: Path, references: tuple[Path, ...], fmt: str, no_ci: bool,
          config_path: Path | None) -> None:
    """Score any system's outputs with compare's metrics."""
    from mprtune.evaluate.score import score_files
    from mprtune.views import score_table

    matrix = config_path or paths.project_root() / paths.MATRIX_FILE
    scores = score_files(task, predictions, source, list(references), with_ci=not no_ci,
                         matrix_path=matrix if matrix.is_file() else None)
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


PREPARE_HELP = """Write alpaca JSONL for TASKs (+ manifest.json) that LLaMA-Factory loads.

\b
Files are the matrix's `datasets:` files in --out (default: <project>/<data_dir>);
every row has a stable `id` and the task's prompt prefix ("Fix: ", ...). Eval rows also
carry `source` and all `references` (knowledge: `kind`). manifest.json lists each file
with rows, split, source, sha256 and prompt (entries of other files are kept).

\b
--source hf     download with `datasets` (jhu-clsp/jfleg, google-research-datasets/paws
                labeled_final, nyu-mll/glue qqp, facebook/kilt_tasks nq,
                facebook/kilt_wikipedia)
--source PATH   a folder laid out as (a corpus folder may also be PATH itself):
  jfleg/  dev.src dev.ref0..3 test.src test.ref0..3       (train = dev, eval = test)
  paws/   train.tsv test.tsv                (labeled_final; eval = test positives)
  qqp/    train.tsv dev.tsv (GLUE)  or  quora_duplicate_questions.tsv (Quora;
          eval = ids ending in 0)
  kilt/   nq-train-kilt.jsonl nq-dev-kilt.jsonl              (KILT NQ; eval = dev)
  wiki.jsonl  {"title", "text"} per line (or KILT knowledge-source rows); ~10% of
              titles (by hash) are the held-out description eval set

\b
Rows longer than a variant's cutoff_len (LLaMA-Factory would cut the assistant header
off) are dropped (--on-overlong drop) or fail the run (fail). A malformed input row
stops the run with `file:line: what is wrong` unless --skip-bad counts and skips it.
Nothing is replaced unless every file was built.
"""


@cli.command("prepare-data", help=PREPARE_HELP, short_help="Prepare the tasks' datasets (alpaca JSONL).")
@click.argument("tasks", nargs=-1, required=True)
@click.option("--source", default="hf", show_default=True, metavar="hf|PATH",
              help="`hf` (Hugging Face Hub) or a local folder (layout above).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: the project root / the matrix's data_dir).")
@click.option("--skip-bad", is_flag=True, help="Skip and count malformed input rows instead of failing.")
@click.option("--on-overlong", type=click.Choice(["drop", "fail"]), default="drop", show_default=True,
              help="Rows longer than a variant's cutoff_len: drop them, or fail (exit 2).")
@config_option
@domain_errors
def prepare_data(tasks: tuple[str, ...], source: str, out: Path | None, skip_bad: bool, on_overlong: str,
                 config_path: Path | None, profile: str) -> None:
    from mprtune.data import prepare_data as prepare
    from mprtune.views import prepare_table

    ws = open_workspace(config_path, profile)
    lines, notes = prepare_table(prepare(ws.matrix, list(tasks), source, out or ws.data_dir, skip_bad, on_overlong))
    for note in notes:
        click.echo(note, err=True)
    click.echo("\n".join(lines))


def main() -> None:
    cli(prog_name="mprtune")


if __name__ == "__main__":
    sys.exit(main())
