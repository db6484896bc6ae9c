"""Commands about runs: render the configs, plan, train, watch, cancel, collect."""

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
    warn,
)


@cli.command()
@config_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output root (default: the project root; other profiles: .mprtune/profiles/<name>).",
)
@click.option("--check", is_flag=True, help="Render in memory; exit 1 listing files that differ from disk.")
@click.option("--no-lf-check", is_flag=True, help="Skip the LLaMA-Factory parser check.")
@domain_errors
def render(config_path: Path | None, profile: str, out: Path | None, check: bool, no_lf_check: bool) -> None:
    """Render every file LLaMA-Factory reads.

    Training and prediction YAMLs, dataset_info.json and DeepSpeed JSON, checked with
    LLaMA-Factory's own parser.
    """
    from mprtune.config.render import render_project
    from mprtune.config.templating import overrides_used

    ws = open_workspace(config_path, profile)
    out = paths.check_folder(out, "--out") if out else ws.render_dir
    outcome = render_project(
        ws.matrix, out, ws.data_dir, check_only=check, lf_check=not no_lf_check, cache_dir=ws.cache_dir
    )
    for message in outcome.warnings:
        warn(message)
    for override in overrides_used():
        click.echo(f"Template override: {override} (used instead of the built-in template of that name)")
    if check:
        click.echo(f"{len(ws.matrix.variants)} variants: rendered files match {ws.matrix.source.name}")
    else:
        click.echo(f"Rendered {len(outcome.written)} files for {len(ws.matrix.variants)} variants into {out}")


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every variant of the matrix.")
@slot_options
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Relaunches (resuming from the newest complete checkpoint) before a job counts as failed.",
)
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
def train(
    variants: tuple[str, ...],
    all_: bool,
    gpus: str | None,
    slots: int | None,
    retries: int,
    dry_run: bool,
    backend: str,
    partition: str | None,
    time_limit: str | None,
    account: str | None,
    sbatch_args: tuple[str, ...],
    detach: bool,
    runs_dir: Path | None,
    config_path: Path | None,
    profile: str,
) -> None:
    """Train variants: longest first, one job per slot, resuming."""
    from mprtune.launch import backends
    from mprtune.launch import train as launch
    from mprtune.views import Progress, detach_lines, failure_lines, plan_lines, train_summary

    ws = open_workspace(config_path, profile, runs_dir)
    chosen = chosen_variants(ws, variants, all_)
    executor = backends.from_options(
        ws.matrix,
        backend,
        gpus,
        slots,
        check_devices=not dry_run,
        partition=partition,
        time_limit=time_limit,
        account=account,
        sbatch_args=list(sbatch_args),
        detach=detach,
    )
    if dry_run:
        plan = launch.plan_training(ws, chosen, executor.slots(), warn, check_fits=executor.check_fits)
        for message in plan.warnings + backends.device_warnings(ws.matrix, gpus, slots, backend):
            warn(message)
        click.echo("\n".join(plan_lines(plan, executor, show_commands=True)))
        return
    try:
        with Progress(ws, [v.name for v in chosen], echo=click.echo) as progress:
            results = launch.train(
                ws, chosen, executor, retries, progress.event, on_plan=lambda plan: progress.show_plan(plan, executor)
            )
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
@click.option(
    "--backend",
    type=click.Choice(["local", "slurm"]),
    default="local",
    show_default=True,
    help="Plan for the local queue or for Slurm (needed for variants with `nodes` > 1).",
)
@click.option("--partition", default=None, help="Slurm partition whose nodes the plan is checked against.")
@runs_option
@config_option
@domain_errors
def plan(
    variants: tuple[str, ...],
    gpus: str | None,
    slots: int | None,
    backend: str,
    partition: str | None,
    runs_dir: Path | None,
    config_path: Path | None,
    profile: str,
) -> None:
    """Show the schedule and every command; launch nothing."""
    from mprtune.launch import backends
    from mprtune.launch.train import plan_training
    from mprtune.views import plan_lines

    ws = open_workspace(config_path, profile, runs_dir)
    chosen = ws.select(variants)
    executor = backends.from_options(ws.matrix, backend, gpus, slots, check_devices=False, partition=partition)
    result = plan_training(ws, chosen, executor.slots(), warn, check_fits=executor.check_fits)
    for message in result.warnings + backends.device_warnings(ws.matrix, gpus, slots, backend):
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
def cancel(
    variants: tuple[str, ...], all_: bool, runs_dir: Path | None, config_path: Path | None, profile: str
) -> None:
    """Stop running jobs (they stay resumable)."""
    from mprtune.launch.train import cancel_jobs

    ws = open_workspace(config_path, profile, runs_dir)
    done = cancel_jobs(ws, chosen_variants(ws, variants, all_), warn)
    click.echo(f"Cancelled: {', '.join(done)}" if done else "Nothing running to cancel.")


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where collect.json, collect.csv and loss_curves.png go (default: the runs dir).",
)
@runs_option
@config_option
@domain_errors
def collect(out: Path | None, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Inventory of the runs, with loss curves."""
    from mprtune.launch.inventory import collect as collect_all
    from mprtune.views import collect_table

    ws = open_workspace(config_path, profile, runs_dir)
    records, written = collect_all(ws, paths.check_folder(out, "--out") if out else ws.runs, warn)
    click.echo("\n".join(collect_table(records)))
    click.echo("Wrote " + ", ".join(str(p) for p in written))
