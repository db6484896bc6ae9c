"""`mprtune prepare-data`: a thin click command over `mprtune.data.prepare_data`.

The command object is built on first access (module `__getattr__`) with mprtune.cli's own
decorators (domain_errors and load are looked up at call time), so either module may be imported
first and `mprtune.cli` may import this one at any point of its body.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

HELP = """Write alpaca JSONL for TASKs (+ manifest.json) that LLaMA-Factory loads.

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

_COMMAND: click.Command | None = None


def _print_report(report: Any) -> None:
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


def _config_option_fallback(command: Callable) -> Callable:
    """mprtune.cli.config_option, for when mprtune.cli imports this module before defining it."""
    from mprtune import paths

    command = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                           default=None, help="Experiment matrix (default: mprtune.yaml at the project root).")(command)
    return click.option("--profile", envvar=paths.PROFILE_ENV, default="reference", show_default=True,
                        help="Profile from the matrix, e.g. `demo` (env MPRTUNE_PROFILE).")(command)


def _domain_errors(command: Callable) -> Callable:
    """mprtune.cli.domain_errors, looked up at call time (mprtune.cli is complete by then)."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mprtune.cli import domain_errors

        return domain_errors(command)(*args, **kwargs)
    return wrapper


def _build() -> click.Command:
    from mprtune import paths

    try:
        from mprtune.cli import config_option
    except ImportError:  # mprtune.cli is importing us from its top
        config_option = _config_option_fallback

    @click.command("prepare-data", help=HELP, short_help="Prepare the tasks' datasets (alpaca JSONL + manifest).")
    @click.argument("tasks", nargs=-1, required=True)
    @config_option
    @click.option("--source", default="hf", show_default=True, metavar="hf|PATH",
                  help="`hf` (Hugging Face Hub) or a local folder (layout above).")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Output folder (default: the project root / the matrix's data_dir).")
    @click.option("--skip-bad", is_flag=True, help="Skip and count malformed input rows instead of failing.")
    @click.option("--on-overlong", type=click.Choice(["drop", "fail"]), default="drop", show_default=True,
                  help="Rows longer than a variant's cutoff_len: drop them, or fail (exit 2).")
    @_domain_errors
    def prepare_data_command(tasks: tuple[str, ...], config_path: Path | None, profile: str, source: str,
                             out: Path | None, skip_bad: bool, on_overlong: str) -> None:
        from mprtune.cli import load
        from mprtune.data import prepare_data

        matrix = load(config_path, profile)
        out_dir = out if out is not None else paths.project_root() / matrix.data_dir
        _print_report(prepare_data(matrix, list(tasks), source, out_dir, skip_bad, on_overlong))

    return prepare_data_command


def __getattr__(name: str) -> Any:
    global _COMMAND
    if name == "prepare_data_command":
        if _COMMAND is None:
            command = _build()  # may re-enter via mprtune.cli's own import of this name
            if _COMMAND is None:
                _COMMAND = command
        return _COMMAND
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
