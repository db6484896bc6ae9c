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


def runs_option(command: Callable) -> Callable:
    return click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Run folders (default: runs/ at the project root, runs-<profile>/ for other "
                             "profiles; env MPRTUNE_RUNS_DIR).")(command)


def select_variants(matrix: Any, names: tuple[str, ...], all_: bool) -> list:
    if not names and not all_:
        raise MprtuneError("name the variants to run, or pass --all (known: " + ", ".join(matrix.variants) + ")")
    return matrix.select(list(names))


def make_executor(matrix: Any, gpus: str | None, slots: int | None, backend: str = "local", **slurm: Any):
    if backend == "slurm":
        from mprtune.slurm import SlurmExecutor

        defaults = dict(matrix.slurm)
        options = {"partition": slurm.get("partition") or defaults.get("partition"),
                   "time_limit": slurm.get("time_limit") or defaults.get("time"),
                   "account": slurm.get("account") or defaults.get("account"),
                   "sbatch_args": [*defaults.get("sbatch_args", []), *slurm.get("sbatch_args", [])],
                   "setup": defaults.get("setup", []), "detach": slurm.get("detach", False)}
        for key in ("cpus_per_task", "mem"):
            if key in defaults:
                options[key] = defaults[key]
        return SlurmExecutor(**options)
    from mprtune.local_executor import LocalExecutor

    if gpus and slots:
        raise MprtuneError("--gpus and --slots are exclusive: GPU slots or CPU slots")
    if gpus:
        try:
            ids = [int(g) for g in gpus.split(",") if g.strip()]
        except ValueError:
            raise MprtuneError(f"--gpus: expected comma-separated GPU ids like 0,1, got {gpus!r}") from None
        return LocalExecutor(gpus=ids)
    if slots:
        return LocalExecutor(cpu_slots=slots)
    return LocalExecutor(gpus=list(matrix.gpus), cpu_slots=matrix.slots)


def echo_plan(plan: Any, show_commands: bool) -> None:
    from mprtune.launcher import describe_spec

    for decision in plan.decisions:
        click.echo(f"{decision.variant:<32} {decision.action:<7} {decision.reason}")
    if plan.schedule.placements:
        click.echo("")
        click.echo(f"{'variant':<32} {'slot':<6} {'start':>10} {'end':>10} {'hours':>7}")
        for p in plan.schedule.placements:
            click.echo(f"{p.variant:<32} {p.slot:<6} {p.start_s / 3600:>9.2f}h {p.end_s / 3600:>9.2f}h "
                       f"{(p.end_s - p.start_s) / 3600:>7.2f}")
        s = plan.schedule
        click.echo(f"makespan {s.makespan_s / 3600:.2f} h, lower bound max(total/slots, longest) "
                   f"{s.lower_bound_s / 3600:.2f} h, ratio {s.ratio:.3f}")
    if show_commands:
        slots = {p.variant: p.slot for p in plan.schedule.placements}
        for spec in plan.specs:
            info = describe_spec(spec)
            slot = slots.get(spec.name, "")
            gpu = "" if slot.startswith("cpu") or slot == "cluster" else slot
            click.echo(f"\n# {spec.name} (slot {slot})\ncd {info['cwd']}")
            click.echo(f"CUDA_VISIBLE_DEVICES={gpu} "
                       + " ".join(f"{k}={v}" for k, v in sorted(info["env"].items()) if k != "PATH")
                       + " " + " ".join(info["command"]))


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every variant of the matrix.")
@click.option("--gpus", default=None, help="GPU ids, one job per GPU (default: hardware.gpus).")
@click.option("--slots", type=click.IntRange(min=1), default=None, help="Run N CPU jobs without GPUs.")
@click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True)
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
    """Train variants: one job per GPU slot, longest first, resuming and skipping from run folders."""
    from mprtune import launcher

    matrix = load(config_path, profile)
    chosen = select_variants(matrix, variants, all_)
    runs = paths.runs_dir(profile, runs_dir)
    root = paths.project_root()
    executor = make_executor(matrix, gpus, slots, backend, partition=partition, time_limit=time_limit,
                             account=account, sbatch_args=list(sbatch_args), detach=detach)
    if dry_run:
        plan = launcher.plan_training(matrix, chosen, runs, root, executor.slots() or ["cluster"])
        echo_plan(plan, show_commands=True)
        if backend == "slurm":
            for spec in plan.specs:
                click.echo(f"\n# sbatch script for {spec.name}\n" + executor.script(spec))
        return
    from mprtune.progress import Progress

    try:
        with Progress(matrix, runs, [v.name for v in chosen]) as progress:
            results = launcher.train(matrix, chosen, runs, root, executor, retries, progress.event,
                                     on_plan=lambda plan: echo_plan(plan, show_commands=False))
    except KeyboardInterrupt:
        click.echo("Interrupted: running jobs were stopped and are resumable; rerun the same command.", err=True)
        sys.exit(130)
    if detach:
        for status in results.values():
            click.echo(f"submitted {status.name} as Slurm job {status.job_id}")
        click.echo(f"{len(results)} submitted; follow with `mprtune status`, stop with `mprtune cancel`")
        return
    failed = [s for s in results.values() if s.state == "failed"]
    for status in failed:
        click.echo(f"FAILED {status.name}: {status.reason}", err=True)
        for line in (status.log_tail or "").splitlines()[-8:]:
            click.echo(f"    {line}", err=True)
    done = sum(1 for s in results.values() if s.state == "done")
    click.echo(f"{done} trained, {len(failed)} failed, runs in {runs}")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--gpus", default=None)
@click.option("--slots", type=click.IntRange(min=1), default=None)
@runs_option
@config_option
@domain_errors
def plan(variants: tuple[str, ...], gpus: str | None, slots: int | None, runs_dir: Path | None,
         config_path: Path | None, profile: str) -> None:
    """The schedule (slot, start, end, makespan vs lower bound) and each job's command, without launching."""
    from mprtune import launcher

    matrix = load(config_path, profile)
    chosen = matrix.select(list(variants))
    executor = make_executor(matrix, gpus, slots)
    result = launcher.plan_training(matrix, chosen, paths.runs_dir(profile, runs_dir), paths.project_root(),
                                    executor.slots())
    echo_plan(result, show_commands=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="A list of objects, one per variant.")
@click.option("--watch", is_flag=True, help="Refresh every 2 seconds until interrupted.")
@runs_option
@config_option
@domain_errors
def status(as_json: bool, watch: bool, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Per variant: state, slot, times, step/total, last loss, ETA, retries, log."""
    import json
    import time

    from mprtune.status import status_rows

    matrix = load(config_path, profile)
    runs = paths.runs_dir(profile, runs_dir)
    while True:
        rows = status_rows(matrix, runs)
        if as_json:
            click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        else:
            click.echo(format_status(rows))
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
    """Stop running jobs (scancel on Slurm); they stay resumable from their last checkpoint."""
    from mprtune.launcher import cancel_jobs

    matrix = load(config_path, profile)
    done = cancel_jobs(matrix, select_variants(matrix, variants, all_), paths.runs_dir(profile, runs_dir))
    click.echo(f"Cancelled: {', '.join(done)}" if done else "Nothing running to cancel.")


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where collect.json, collect.csv and loss_curves.png go (default: the runs dir).")
@runs_option
@config_option
@domain_errors
def collect(out: Path | None, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Inventory of the runs (adapter, losses, time, samples/s, checkpoints) + one PNG of all loss curves."""
    from mprtune.collect import collect as collect_all

    matrix = load(config_path, profile)
    runs = paths.runs_dir(profile, runs_dir)
    records, written = collect_all(matrix, runs, out or runs)
    click.echo(f"{'variant':<32} {'state':<11} {'final':>7} {'best':>7} {'time s':>8} {'samp/s':>7} "
               f"{'adapter MB':>10}  checkpoints")
    for r in records:
        fmt = lambda v, spec: format(v, spec) if v is not None else "-"
        size = r.adapter_bytes / 1e6 if r.adapter_bytes else None
        click.echo(f"{r.variant:<32} {r.state:<11} {fmt(r.final_loss, '.4f'):>7} {fmt(r.best_loss, '.4f'):>7} "
                   f"{fmt(r.train_seconds, '.1f'):>8} {fmt(r.samples_per_second, '.2f'):>7} "
                   f"{fmt(size, '.2f'):>10}  {','.join(r.checkpoints) or '-'}")
    click.echo("Wrote " + ", ".join(str(p) for p in written))


@cli.command()
@click.argument("variant")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the merged model.")
@click.option("--device", type=click.Choice(["cpu", "auto"]), default="cpu", show_default=True)
@runs_option
@config_option
@domain_errors
def export(variant: str, out: Path, device: str, runs_dir: Path | None, config_path: Path | None,
           profile: str) -> None:
    """Merge VARIANT's adapter into its base model (llamafactory-cli export) for deployment."""
    from mprtune.export import export_variant

    matrix = load(config_path, profile)
    folder = export_variant(matrix, variant, paths.runs_dir(profile, runs_dir), paths.project_root(), out, device)
    click.echo(f"Merged model written to {folder}")


@cli.command()
@click.argument("variants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every variant of the matrix.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N rows of each eval dataset.")
@click.option("--gpus", default=None, help="GPU ids for the prediction jobs (default: hardware.gpus).")
@click.option("--slots", type=click.IntRange(min=1), default=None, help="Run N CPU prediction jobs.")
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where reports/<timestamp>/ go (default: reports/ at the project root).")
@runs_option
@config_option
@domain_errors
def compare(variants: tuple[str, ...], all_: bool, limit: int | None, gpus: str | None, slots: int | None,
            reports_dir: Path | None, runs_dir: Path | None, config_path: Path | None, profile: str) -> None:
    """Base model vs base + adapter on the held-out set: metrics, intervals, report."""
    from mprtune.compare import compare as run_compare

    matrix = load(config_path, profile)
    chosen = select_variants(matrix, variants, all_)
    reports = reports_dir or paths.project_root() / "reports"
    outcome = run_compare(matrix, chosen, paths.runs_dir(profile, runs_dir), paths.project_root(),
                          make_executor(matrix, gpus, slots), limit, reports,
                          on_event=lambda e: click.echo(f"[{e.kind}] {e.name} (slot {e.slot}) {e.message}".rstrip()))
    click.echo(f"Report: {outcome.report_dir / 'report.md'}")


@cli.command()
@click.argument("variant")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback requires --api-key.")
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option("--api-key", envvar="MPRTUNE_API_KEY", default=None,
              help="Bearer key clients must send (env MPRTUNE_API_KEY keeps it out of the process list).")
@click.option("--base", is_flag=True, help="Serve the base model without the adapter (compare's baseline).")
@click.option("--check", is_flag=True, help="Replay held-out prompts over HTTP: parity with compare's "
                                            "predictions, latency, memory; then stop.")
@click.option("--rows", type=click.IntRange(min=1), default=50, show_default=True, help="--check: prompts to replay.")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="--check: parallel clients of the second pass.")
@click.option("--max-tokens-limit", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Requests asking for more new tokens are refused (400).")
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="--check also writes next to the latest report here (default: reports/ at the project root).")
@runs_option
@config_option
@domain_errors
def serve(variant: str, host: str, port: int, api_key: str | None, base: bool, check: bool, rows: int,
          concurrency: int, max_tokens_limit: int, reports_dir: Path | None, runs_dir: Path | None,
          config_path: Path | None, profile: str) -> None:
    """OpenAI-compatible API for VARIANT (LLaMA-Factory), with compare's generation settings; Ctrl-C stops it."""
    from mprtune.serve.server import ServeOptions, check_options
    from mprtune.serve.target import resolve_target

    options = ServeOptions(host=host, port=port, api_key=api_key or None, max_tokens_limit=max_tokens_limit)
    check_options(options)
    matrix = load(config_path, profile)
    runs, root = paths.runs_dir(profile, runs_dir), paths.project_root()
    target = resolve_target(matrix, variant, runs, root, base)
    if check:
        from mprtune.serve.check import check_and_record

        outcome = check_and_record(matrix, target, root, runs, reports_dir or root / "reports", options, rows,
                                   concurrency, say=click.echo)
        echo_check(outcome.result)
        for path in [*outcome.written, *([outcome.card] if outcome.card else [])]:
            click.echo(f"Wrote {path}")
        if not outcome.passed:
            parity = outcome.result["parity"]
            click.echo(f"Error: served answers differ from compare's predictions on "
                       f"{parity['rows'] - parity['matches']} of {parity['rows']} prompts (or requests failed)", err=True)
            sys.exit(1)
        return
    from mprtune.serve.server import serve_until_interrupted

    try:
        serve_until_interrupted(target, options, on_ready=echo_ready)
    except KeyboardInterrupt:
        click.echo("Server stopped.")


def echo_ready(server: Any) -> None:
    from mprtune.serve.server import usage_examples

    curl, python = usage_examples(server)
    target = server.target
    click.echo(f"Serving {target.served_name} ({target.system}) at {server.base_url} "
               f"(ready in {server.start_seconds:.1f} s; pid {server.pid}; log {server.log})")
    click.echo(f"Generation as compared: greedy, max_new_tokens {target.max_new_tokens}; "
               f"settings from {target.settings_source}")
    click.echo(f"\n{curl}\n\n{python}\n")
    click.echo("Ctrl-C stops the server.", nl=True)


def echo_check(result: dict) -> None:
    parity = result["parity"]
    server = result["server"]
    click.echo(f"parity with compare: {parity['matches']}/{parity['rows']} identical after strip "
               f"({100 * parity['rate']:.1f}%); same answers at concurrency {result['latency'][-1]['concurrency']}: "
               f"{result['same_answers_under_load']}/{parity['rows']}")
    click.echo(f"server start {server['start_seconds']:.1f} s; peak memory {server['peak_memory_mb']:.0f} MiB "
               f"({server['memory_kind']})")
    fmt = lambda v, spec: format(v, spec) if v is not None else "-"
    click.echo(f"{'concurrency':>11} {'requests':>8} {'errors':>6} {'p50 s':>8} {'p95 s':>8} {'tokens/s':>9}")
    for level in result["latency"]:
        click.echo(f"{level['concurrency']:>11} {level['requests']:>8} {level['errors']:>6} "
                   f"{fmt(level['p50_s'], '.3f'):>8} {fmt(level['p95_s'], '.3f'):>8} "
                   f"{fmt(level['tokens_per_second'], '.1f'):>9}")
    for miss in parity["mismatches"][:10]:
        served = miss["served"] if miss["served"] is not None else f"ERROR {miss['error']}"
        click.echo(f"\nMISMATCH {miss['id']}: {miss['prompt'][:100]!r}\n  compare: {miss['stored'][:200]!r}\n"
                   f"  served:  {served[:200]!r}")
    if len(parity["mismatches"]) > 10:
        click.echo(f"... {len(parity['mismatches']) - 10} more in check.md")


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
@domain_errors
def score(task: str, predictions: Path, source: Path, references: tuple[Path, ...], fmt: str, no_ci: bool) -> None:
    """Score any system's outputs with the same metrics as `compare`."""
    import json

    from mprtune.scoring_files import score_files

    scores = score_files(task, predictions, source, list(references), with_ci=not no_ci)
    if fmt == "json":
        click.echo(json.dumps(scores, indent=2, sort_keys=True))
        return
    click.echo(f"{'metric':<16} {'value':>10} {'95% CI':>22} {'n':>6}")
    for name, value in scores.items():
        ci = (f"[{value['ci_low']:.4f}, {value['ci_high']:.4f}]" if value.get("ci_low") is not None else "-")
        click.echo(f"{name:<16} {value['value']:>10.4f} {ci:>22} {value['n']:>6}")


@cli.command()
@click.option("--slots", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N eval rows per dataset.")
@domain_errors
def demo(slots: int, limit: int | None) -> None:
    """The whole pipeline on this CPU: tiny models, samples, render, train, collect, compare, report."""
    from mprtune.pipeline import run_demo

    try:
        report = run_demo(paths.project_root(), click.echo, slots, limit)
    except KeyboardInterrupt:
        click.echo("Interrupted: rerun `make demo` to resume where it stopped.", err=True)
        sys.exit(130)
    click.echo(f"Report: {report}")


def format_status(rows: list) -> str:
    import time

    def when(t: float | None) -> str:
        return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"

    lines = [f"{'variant':<32} {'state':<11} {'slot':<5} {'started':>8} {'finished':>8} {'step':>11} "
             f"{'loss':>7} {'eta':>8} {'retries':>7}  log"]
    for r in rows:
        step = f"{r.step}/{r.total_steps}" if r.step is not None else "-"
        loss = f"{r.loss:.4f}" if r.loss is not None else "-"
        lines.append(f"{r.variant:<32} {r.state:<11} {r.slot or '-':<5} {when(r.started_at):>8} "
                     f"{when(r.finished_at):>8} {step:>11} {loss:>7} {r.eta or '-':>8} {r.retries:>7}  {r.log}")
        if r.reason:
            lines.append(f"{'':<32} reason: {r.reason}")
    return "\n".join(lines)


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


@cli.command("prepare-data", help=PREPARE_HELP, short_help="Prepare the tasks' datasets (alpaca JSONL + manifest).")
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

    matrix = load(config_path, profile)
    out_dir = out if out is not None else paths.project_root() / matrix.data_dir
    print_prepare_report(prepare(matrix, list(tasks), source, out_dir, skip_bad, on_overlong))


def print_prepare_report(report: Any) -> None:
    header = ("file", "split", "rows", "bad", "overlong", "held-out", "dups")
    rows = [(f.file, f.split, str(f.rows), str(f.skipped_bad), str(f.dropped_overlong),
             str(f.counters.get("held_out_overlap_pairs", "-")), str(f.counters.get("duplicates", "-")))
            for f in report.files]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    for f in report.files:
        for example in f.bad_examples:
            click.echo(f"skipped bad row: {example}", err=True)
        if f.dropped_overlong:
            click.echo(f"{f.file}: dropped {f.dropped_overlong} rows longer than cutoff_len, e.g.", err=True)
            for example in f.overlong_examples:
                click.echo(f"  {example}", err=True)
    click.echo(f"Wrote {len(report.files)} files and {report.manifest}")



def main() -> None:
    cli(prog_name="mprtune")


if __name__ == "__main__":
    sys.exit(main())
