"""Commands about data and models: prepare-data, tiny-model."""

from __future__ import annotations

from pathlib import Path

import click

from mprtune import paths
from mprtune.cli.common import cli, config_option, domain_errors, open_workspace

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
@click.option(
    "--source",
    default="hf",
    show_default=True,
    metavar="hf|PATH",
    help="`hf` (Hugging Face Hub) or a local folder (layout above).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: the project root / the matrix's data_dir).",
)
@click.option("--skip-bad", is_flag=True, help="Skip and count malformed input rows instead of failing.")
@click.option(
    "--on-overlong",
    type=click.Choice(["drop", "fail"]),
    default="drop",
    show_default=True,
    help="Rows longer than a variant's cutoff_len: drop them, or fail (exit 2).",
)
@config_option
@domain_errors
def prepare_data(
    tasks: tuple[str, ...],
    source: str,
    out: Path | None,
    skip_bad: bool,
    on_overlong: str,
    config_path: Path | None,
    profile: str,
) -> None:
    from mprtune.data import prepare_data as prepare
    from mprtune.views import prepare_table

    ws = open_workspace(config_path, profile)
    out = paths.check_folder(out, "--out") if out else ws.data_dir
    lines, notes = prepare_table(prepare(ws.matrix, list(tasks), source, out, skip_bad, on_overlong))
    for note in notes:
        click.echo(note, err=True)
    click.echo("\n".join(lines))


@cli.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--corpus",
    "corpus_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Text/JSONL files to train the tokenizer's merges on (repeatable).",
)
@domain_errors
def tiny_model(directory: Path, seed: int, corpus_files: tuple[Path, ...]) -> None:
    """Build a tiny random Llama for tests (CPU, seconds)."""
    from mprtune.models.tiny import build_log, build_tiny_llama_logged

    build_tiny_llama_logged(directory, seed, list(corpus_files))
    click.echo(f"Tiny Llama written to {directory} (build log: {build_log(directory)})")


@cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option(
    "--from-dataset-info",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start from an existing LLaMA-Factory dataset_info.json: its entries are used as they are.",
)
@domain_errors
def init(directory: Path, from_dataset_info: Path | None) -> None:
    """Start a project: a commented mprtune.yaml with a task of your own.

    Without --from-dataset-info: one custom task (sentiment classification) and its sample rows
    in data/. Nothing that exists is overwritten.
    """
    from mprtune.scaffold import init_project

    folder = paths.check_folder(directory, "DIRECTORY")
    written = init_project(folder, from_dataset_info)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"Next: cd {folder} && mprtune render && mprtune plan && mprtune train --all && mprtune compare --all")
