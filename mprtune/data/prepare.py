"""`prepare_data`: build every dataset of the named tasks, check lengths, write atomically + manifest.

Task -> datasets comes from the matrix (`tasks.<name>.train/eval`); each dataset name belongs to
one corpus builder (CORPORA). A corpus always writes both its train and eval file (the eval set
is what training is held out from); file names are the matrix's `datasets.<name>.file`.

Prompts: the prompt prefix of the tasks that use a dataset (all tasks of the matrix using one
file must agree), except entity descriptions, which always use knowledge.DESCRIBE_PROMPT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mprtune.config.matrix import Matrix
from mprtune.data.common import (
    MANIFEST_FILE,
    BuildContext,
    DatasetWriter,
    FileReport,
    manifest_text,
    read_manifest,
)
from mprtune.data.truncation import LengthGuard, limits_for
from mprtune.errors import DataError, show, show_path
from mprtune.tasks.base import Preparer

ON_OVERLONG = ("drop", "fail")
HF_SOURCE = "hf"


def _builtin_preparers() -> tuple[Preparer, ...]:
    from mprtune.tasks import BUILTIN_KINDS, resolve_kind

    return tuple(p for name in BUILTIN_KINDS for p in resolve_kind(name).preparers)


def _build(preparer: Preparer) -> Callable[[BuildContext], None]:
    from mprtune.tasks.registry import load_class

    return load_class(preparer.build, "data preparer")  # type: ignore[return-value]  # a builder function


@dataclass
class PrepareReport:
    """Result of one prepare-data run: one FileReport per written file, in writing order."""

    out_dir: Path
    manifest: Path
    files: list[FileReport]


def corpora_for(matrix: Matrix, tasks: list[str]) -> list[Preparer]:
    """The preparers of the tasks' kinds that build their datasets, in the kinds' order."""
    unknown = [t for t in tasks if t not in matrix.tasks]
    if unknown:
        raise DataError(f"unknown task {show(unknown[0])} (known: {', '.join(matrix.tasks)})")
    every = [*_builtin_preparers(), *(p for t in matrix.tasks.values() for p in t.plugin.preparers)]
    by_dataset = {name: p for p in every for name in (p.train, p.eval)}
    needed: list[Preparer] = []
    for task in tasks:
        for dataset in (*matrix.tasks[task].train, *matrix.tasks[task].eval):
            corpus = by_dataset.get(dataset)
            if corpus is None:
                raise DataError(
                    f"tasks.{task}: no preparer for dataset {dataset!r} (prepare-data builds {', '.join(by_dataset)}; "
                    f"a dataset of your own is read as it is: nothing to prepare)"
                )
            if corpus not in needed:
                needed.append(corpus)
    return [c for c in dict.fromkeys(every) if c in needed]


def prompt_for(matrix: Matrix, corpus: Preparer) -> str:
    if corpus.fixed_prompt is not None:
        return corpus.fixed_prompt
    prompts = {t.name: t.prompt for t in matrix.tasks.values() if {corpus.train, corpus.eval} & {*t.train, *t.eval}}
    if len(set(prompts.values())) > 1:
        listed = ", ".join(f"{name} {show(p)}" for name, p in prompts.items())
        raise DataError(
            f"datasets {corpus.train}/{corpus.eval} are used by tasks with different prompts "
            f"({listed}); one file has one prompt: make them equal or use other datasets"
        )
    return next(iter(prompts.values()))


def _displayer(root: Path) -> Callable[[Path], str]:
    root = root.resolve()

    def display(path: Path) -> str:
        full = Path(path).resolve()
        try:
            return full.relative_to(root).as_posix()
        except ValueError:
            return full.as_posix()

    return display


def prepare_data(
    matrix: Matrix,
    tasks: list[str],
    source: str,
    out_dir: Path,
    skip_bad: bool = False,
    on_overlong: str = "drop",
    root: Path | None = None,
) -> PrepareReport:
    """Prepare the datasets of `tasks` from `source` ("hf" or a folder) into `out_dir`.

    `root` (default: the matrix's folder) resolves relative model paths and shortens paths in
    messages and the manifest. Nothing in `out_dir` changes unless every file was built.
    """
    if on_overlong not in ON_OVERLONG:
        raise DataError(f"--on-overlong must be one of {', '.join(ON_OVERLONG)}, got {on_overlong!r}")
    if not tasks:
        raise DataError(f"name at least one task (known: {', '.join(matrix.tasks)})")
    root = Path(root) if root is not None else matrix.source.resolve().parent
    corpora = corpora_for(matrix, tasks)
    prompts = {c.name: prompt_for(matrix, c) for c in corpora}
    source_root = None
    if source != HF_SOURCE:
        source_root = Path(source)
        try:
            is_folder = source_root.is_dir()
        except OSError:  # a name too long for the file system
            is_folder = False
        if not is_folder:
            raise DataError(
                f"--source {show_path(source)}: must be `hf` or a folder (layout: `mprtune prepare-data --help`)"
            )
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST_FILE
    existing = read_manifest(manifest)  # a broken manifest fails before anything is built
    display = _displayer(root)
    counters: dict = {}
    writers: list[DatasetWriter] = []

    def writer(dataset: str, split: str, prompt: str) -> DatasetWriter:
        spec = matrix.datasets.get(dataset)
        file = spec.file if spec else f"{dataset}.jsonl"
        limits = limits_for(matrix, dataset, root)
        report = FileReport(dataset, file, split, prompt, length_check=[lim.describe() for lim in limits])
        if split == "train":
            report.counters.update(duplicates=0, held_out_overlap_pairs=0)
        w = DatasetWriter(
            out_dir / file,
            report,
            LengthGuard(limits, counters) if limits else None,
            on_overlong,
            skip_bad,
            dedupe=(split == "train"),
        )
        writers.append(w)
        return w

    try:
        for corpus in corpora:
            prompt = prompts[corpus.name]
            ctx = BuildContext(
                source_root, writer(corpus.train, "train", prompt), writer(corpus.eval, "eval", prompt), prompt, display
            )
            _build(corpus)(ctx)
            ctx.eval.close()
            ctx.train.close()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    for w in writers:
        w.commit()
    reports = [w.report for w in writers]
    from mprtune.io import atomic_write

    atomic_write(manifest, manifest_text(existing, reports))
    return PrepareReport(out_dir, manifest, reports)
