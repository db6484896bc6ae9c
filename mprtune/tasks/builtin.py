"""What the three built-in kinds share: mprtune's prepared rows and the metrics every one of them reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from mprtune.rows import EvalRow
from mprtune.tasks.base import Presentation, TaskKind

if TYPE_CHECKING:
    from mprtune.metrics.api import SystemScores
    from mprtune.metrics.registry import MetricSpec

COMMON_METRICS = ("exact_match", "empty", "verbose", "output_words", "reference_words", "length_gap", "length_ratio")


class BuiltinKind(TaskKind):
    """A kind scored by mprtune.metrics.scoring on rows `mprtune prepare-data` wrote."""

    own_metrics: ClassVar[tuple[str, ...]] = ()
    primary: ClassVar[str]
    summary: ClassVar[tuple[str, ...]]
    table: ClassVar[tuple[str, ...]]
    panel: ClassVar[tuple[str, ...]]

    def metric_specs(self) -> dict[str, MetricSpec]:
        from mprtune.metrics.registry import METRICS

        return {name: METRICS[name] for name in (*COMMON_METRICS, *self.own_metrics)}

    def score(self, rows: Sequence[EvalRow], outputs: Sequence[str]) -> SystemScores:
        from mprtune.metrics.scoring import builtin_scores

        return builtin_scores(self.name, rows, outputs)

    def presentation(self) -> Presentation:
        return Presentation(self.primary, self.summary, self.table, self.panel, self.name)
