"""The interface of a task kind: how its eval rows are read, how an answer is scored, what the report shows.

A kind is a class; the matrix's task is an instance of it, built with the task's own options
(the keys of `tasks.<name>` beyond the common ones). Adding a kind is one file with one subclass,
registered by name (built-in), through the `mprtune.task_kinds` entry-point group, or named in the
matrix by dotted path (`kind: mypkg.tasks:Summaries`), see :mod:`mprtune.tasks.registry`.

Everything here is light to import: the matrix loads kinds to check options, and `render` and
`--help` must stay fast, so scoring code (numpy, nltk, sacrebleu) is imported inside `score`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mprtune.errors import DataError, show
from mprtune.rows import Conversation, EvalRow

if TYPE_CHECKING:
    from mprtune.metrics.api import SystemScores
    from mprtune.metrics.registry import MetricSpec

OptionTypes = Mapping[str, type | tuple[type, ...]]


@dataclass(frozen=True)
class DataLicence:
    corpus: str
    licence: str
    url: str
    restricted: bool  # non-commercial (or said to be): the model card warns at the top


@dataclass(frozen=True)
class Preparer:
    """A public corpus `mprtune prepare-data` builds: its train and eval dataset names and its licence."""

    name: str
    train: str  # dataset names (matrix `datasets:` keys)
    eval: str
    build: str  # dotted path of the builder, `module:function(BuildContext)`, imported when it runs
    licence: DataLicence
    fixed_prompt: str | None = None  # None: the tasks' prompt


@dataclass(frozen=True)
class Presentation:
    """What the report, the plot and the model card show first for a task (all metric names)."""

    primary: str  # the summary headline and the plot
    summary: tuple[str, ...]  # the one-line summary per variant
    table: tuple[str, ...]  # leading rows of the task's metric table (shared metrics follow)
    panel: tuple[str, ...]  # plot candidates: the one that moved most is drawn
    panel_group: str  # variants with the same group share a plot panel


class TaskKind:
    """One kind of task. Subclasses set the class attributes and implement `score`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    option_types: ClassVar[OptionTypes] = {}  # task keys this kind accepts beyond the common ones
    prompt_required: ClassVar[bool] = True  # built-in kinds prepare data with the task's prompt prefix
    needs_source: ClassVar[bool] = True  # its metrics compare an output with the input (GLEU, self-BLEU)
    preparers: ClassVar[tuple[Preparer, ...]] = ()

    def __init__(self, options: Mapping[str, Any] | None = None, task: str = "") -> None:
        self.options = dict(options or {})
        self.task = task

    # --- the matrix -----------------------------------------------------------------------------

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems of the kind's own options as (key path below the task, message); types are checked before."""
        return []

    # --- eval rows ------------------------------------------------------------------------------

    def eval_row(self, raw: Mapping[str, Any], conversation: Conversation | None, where: str, row_id: str) -> EvalRow:
        """One eval row from a dataset row (`where` is `file:line`); raises DataError naming `where`.

        Built-in kinds read mprtune's prepared rows (`source`, `references`, `kind`); `conversation`
        is the row as LLaMA-Factory reads it (None when the dataset's format is mprtune's own).
        """
        source = raw.get("source")
        if not isinstance(source, str):
            raise DataError(f"{where}: eval row has no 'source'; re-run `mprtune prepare-data {self.task}`")
        output = raw.get("output") if isinstance(raw.get("output"), str) else ""
        refs = raw.get("references") or [output]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise DataError(f"{where}: 'references' must be a list of strings")
        instruction = raw.get("instruction") if isinstance(raw.get("instruction"), str) else ""
        query = raw.get("input") if isinstance(raw.get("input"), str) else ""
        row_type = raw.get("kind", self.name)
        return EvalRow(
            str(raw.get("id", row_id)),
            source,
            tuple(refs),
            row_type if isinstance(row_type, str) else show(row_type),
            f"{instruction}\n{query}" if query else str(instruction),
            str(output),
        )

    # --- scores ---------------------------------------------------------------------------------

    def metric_specs(self) -> dict[str, MetricSpec]:
        """Every metric this task may report, by name (their definitions go into results.json)."""
        raise NotImplementedError

    def score(self, rows: Sequence[EvalRow], outputs: Sequence[str]) -> SystemScores:
        """One system's per-row tags and metrics (each with its resampling statistic) on `rows`."""
        raise NotImplementedError

    def presentation(self) -> Presentation:
        raise NotImplementedError

    # --- samples --------------------------------------------------------------------------------

    sample_flags: ClassVar[tuple[tuple[str, str], ...]] = (("empty", "EMPTY"), ("exact", "EXACT"))
    good_flags: ClassVar[tuple[str, ...]] = ("exact",)

    def sample_tags(self, tags: Mapping[str, Any]) -> list[str]:
        """Upper-case tags of one row's per-row values (EMPTY first), shown beside samples."""
        return [tag for key, tag in self.sample_flags if tags.get(key) is True]

    def good(self, tags: Mapping[str, Any]) -> bool:
        """Whether the output counts as right: samples show the rows where that changed first."""
        return any(tags.get(key) for key in self.good_flags)

    # --- the report -----------------------------------------------------------------------------

    def describe_answer(self) -> str:
        """How an answer is taken out of an output, for the report (empty: the whole output)."""
        return ""
