"""Commands about deployment: export a merged model, serve a variant."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mprtune.cli.common import cli, config_option, domain_errors, open_workspace, runs_option


@cli.command()
@click.argument("variant")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="New folder for the merged model (not inside the runs dir).",
)
@click.option("--device", type=click.Choice(["cpu", "auto"]), default="cpu", show_default=True)
@runs_option
@config_option
@domain_errors
def export(variant: str, out: Path, device: str, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Merge VARIANT's adapter into its base model."""
    from mprtune.serve.export import export_variant

    ws = open_workspace(config_path, profile, runs_dir)
    click.echo(f"Merged model written to {export_variant(ws, variant, out, device)}")


@cli.command()
@click.argument("variant")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback requires --api-key."
)
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option(
    "--api-key",
    envvar="MPRTUNE_API_KEY",
    default=None,
    help="Bearer key clients must send (env MPRTUNE_API_KEY keeps it out of the process list).",
)
@click.option("--base", is_flag=True, help="Serve the base model without the adapter (compare's baseline).")
@click.option(
    "--check",
    is_flag=True,
    help="Replay held-out prompts over HTTP: parity with compare's predictions, latency, memory; then stop.",
)
@click.option("--rows", type=click.IntRange(min=1), default=50, show_default=True, help="--check: prompts to replay.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="--check: parallel clients of the second pass.",
)
@click.option(
    "--max-tokens-limit",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Requests asking for more new tokens are refused (400).",
)
@click.option(
    "--reports-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="--check also writes next to the latest report here (default: reports/ at the project root).",
)
@runs_option
@config_option
@domain_errors
def serve(
    variant: str,
    host: str,
    port: int,
    api_key: str | None,
    base: bool,
    check: bool,
    rows: int,
    concurrency: int,
    max_tokens_limit: int,
    reports_dir: Path | None,
    runs_dir: Path | None,
    config_path: Path | None,
    profile: str,
) -> None:
    """Serve VARIANT over an OpenAI-compatible API.

    LLaMA-Factory's API server with the base model, adapter, template and generation settings
    `compare` used; Ctrl-C stops it. --check replays held-out prompts and compares the answers.
    """
    from mprtune.serve.server import ServeOptions, check_options, serve_until_interrupted
    from mprtune.serve.target import resolve_target
    from mprtune.views import check_lines, ready_lines

    options = ServeOptions(host=host, port=port, api_key=api_key or None, max_tokens_limit=max_tokens_limit)
    check_options(options)
    ws = open_workspace(config_path, profile, runs_dir)
    target = resolve_target(ws, variant, base)
    if not check:
        try:
            serve_until_interrupted(target, options, on_ready=lambda server: click.echo("\n".join(ready_lines(server))))
        except KeyboardInterrupt:
            click.echo("Server stopped.")
        return
    from mprtune.serve.check import check_and_record

    outcome = check_and_record(ws, target, reports_dir or ws.reports_dir, options, rows, concurrency, say=click.echo)
    click.echo("\n".join(check_lines(outcome.result)))
    for path in [*outcome.written, *([outcome.card] if outcome.card else [])]:
        click.echo(f"Wrote {path}")
    if not outcome.passed:
        parity = outcome.result["parity"]
        click.echo(
            f"Error: served answers differ from compare's predictions on "
            f"{parity['rows'] - parity['matches']} of {parity['rows']} prompts (or requests failed)",
            err=True,
        )
        sys.exit(1)
