"""The `custom` kind: your own data, your own answer format, the metric that fits it.

A custom task reads the user's own datasets (alpaca or sharegpt, as LLaMA-Factory reads them): the
prompt is the last user turn, the reference the assistant's answer (or the row's ``references``
list of strings, when it has one). Its kind-specific keys::

    tasks:
      sentiment:
        kind: custom
        train: [sentiment_train]
        eval: [sentiment_eval]
        system: "Classify the review's sentiment. Answer with one word: positive or negative."
        labels: [positive, negative]                  # a label set: the label metrics
        answer: [strip, drop_preamble, {regex: '(?i)\\b(positive|negative)\\b'}, label]
        metrics: [accuracy, macro_f1, label_f1, confusion, out_of_label]
        primary: accuracy
      cities:
        kind: custom
        answer: [strip, code_fence, json]             # `json` last: the answer is a parsed JSON value
        json_schema: {type: object, required: [city, date]}
        metrics: [json_valid, json_match, field_accuracy, chrf]
        primary: json_match
      mine:
        kind: custom
        normalize: lower                              # exact_match: none | whitespace | lower | squad
        match: '\\d{4}-\\d{2}-\\d{2}'                 # regex_match: the answer matches in full
        metrics:
          - exact_match
          - {name: overlap, function: "mymetrics:overlap", per: row, unit: fraction, better: higher,
             description: "Share of reference words in the answer."}

- ``answer``: the answer pipeline, applied identically to base and tuned outputs and shown in the
  report (steps: :mod:`mprtune.metrics.extract`). Default: ``[strip, drop_preamble, first_line,
  label]`` with labels, ``[strip, code_fence, json]`` for a JSON task (a ``json_schema`` or a JSON
  metric listed), else ``[strip]``.
- ``metrics``: built-in names (:mod:`mprtune.metrics.catalog`) and user metrics ``{name,
  function: "module:function", per: row | corpus, unit, better, target, description}``
  (:mod:`mprtune.metrics.user`; imported and signature-checked when the matrix loads). Default:
  the label metrics with ``labels``, else ``json_valid, json_match, field_accuracy`` for a JSON
  task, else ``exact_match, chrf``. Always added: ``empty, verbose, no_answer, output_words,
  length_ratio``.
- ``primary``: the summary headline and the plot; default ``accuracy`` (labels), ``json_match``
  (JSON), ``exact_match``, else the first metric listed.
- ``labels``: >= 2, distinct once casefolded; a row's first reference is its gold label and must
  name one (checked when the eval rows are read, as a JSON task's references must parse).
- ``json_schema`` (checked against its meta-schema); ``fields`` (keys for per-field accuracy;
  default the schema's properties); ``normalize``; ``match``.

``confusion`` is not a scalar: the matrix is ``SystemScores.details["confusion"]`` (rows gold,
columns predicted + "(out of label)" + "(no answer)").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mprtune.errors import DataError, MprtuneError, show
from mprtune.rows import Conversation, EvalRow
from mprtune.tasks.base import OptionTypes, Presentation, TaskKind
from mprtune.tasks.custom_options import Plan, read_options

if TYPE_CHECKING:
    from mprtune.metrics.api import SystemScores
    from mprtune.metrics.custom_scoring import CustomScoring
    from mprtune.metrics.registry import MetricSpec

# the per-row tag that says "right" for a primary metric (samples show where it changed)
_GOOD_TAG = {
    "accuracy": "correct",
    "macro_f1": "correct",
    "exact_match": "exact",
    "json_match": "json_match",
    "json_valid": "json_valid",
    "field_accuracy": "json_match",
    "regex_match": "regex_match",
}


class Custom(TaskKind):
    """The user's own data: a declared answer pipeline and the metrics that fit the answer."""

    name = "custom"
    description = "your own data: a declared answer pipeline, labels / JSON / text metrics, user metrics"
    prompt_required = False
    option_types: ClassVar[OptionTypes] = {
        "labels": list,
        "answer": list,
        "metrics": list,
        "primary": str,
        "json_schema": dict,
        "fields": list,
        "normalize": str,
        "match": str,
    }
    # per-row tags that are True (None or False otherwise: an empty output is EMPTY only)
    sample_flags: ClassVar[tuple[tuple[str, str], ...]] = (
        ("empty", "EMPTY"),
        ("correct", "CORRECT"),
        ("exact", "EXACT"),
        ("json_match", "JSON_MATCH"),
        ("invalid_json", "INVALID_JSON"),
        ("out_of_label", "OUT_OF_LABEL"),
        ("no_answer", "NO_ANSWER"),
        ("verbose", "VERBOSE"),
    )

    def __init__(self, options: Mapping[str, Any] | None = None, task: str = "") -> None:
        super().__init__(options, task)
        self.plan, problems = read_options(self.options)
        if problems:  # the matrix checks options first: this is a caller that did not
            raise MprtuneError("; ".join(f"tasks.{task}.{key}: {message}" for key, message in problems))
        self._scoring: CustomScoring | None = None

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return read_options(options)[1]

    # --- eval rows ------------------------------------------------------------------------------

    def eval_row(self, raw: Mapping[str, Any], conversation: Conversation | None, where: str, row_id: str) -> EvalRow:
        if conversation is None:  # a plain alpaca row read without LLaMA-Factory's view
            instruction, query = str(raw.get("instruction") or ""), str(raw.get("input") or "")
            user = f"{instruction}\n{query}" if query else instruction
            conversation = Conversation(user, str(raw.get("output") or ""), str(raw.get("system") or ""))
        if not conversation.user.strip():
            raise DataError(f"{where}: no source: the last user turn is empty")
        listed = raw.get("references")
        if listed is None:
            if not conversation.assistant.strip():
                raise DataError(f"{where}: no reference: the last assistant turn is empty")
            references: tuple[str, ...] = (conversation.assistant,)
        elif isinstance(listed, list) and listed and all(isinstance(r, str) for r in listed):
            references = tuple(listed)
        else:
            raise DataError(f"{where}: 'references' must be a non-empty list of strings, got {show(listed)}")
        row = EvalRow(
            row_id,
            conversation.user,
            references,
            "custom",
            conversation.user,
            conversation.assistant,
            conversation.system,
            conversation.history,
            dict(raw),
        )
        from mprtune.metrics.custom_scoring import references_of

        try:
            references_of(row, self.scoring())
        except DataError as exc:
            raise DataError(f"{where}: {exc}".replace(f"row {row_id!r}: ", "")) from None
        return row

    # --- scores ---------------------------------------------------------------------------------

    def scoring(self) -> CustomScoring:
        """What `score` computes (built once: the pipeline, labels, user metric functions)."""
        if self._scoring is None:
            import re

            from mprtune.metrics.custom_scoring import CustomScoring
            from mprtune.metrics.extract import Pipeline
            from mprtune.metrics.user import UserMetric

            plan, specs = self.plan, self.metric_specs()
            self._scoring = CustomScoring(
                Pipeline(plan.steps, plan.labels),
                tuple(dict.fromkeys([*plan.metrics, *_always()])),
                plan.labels,
                plan.normalize,
                plan.fields,
                plan.schema,
                None if plan.match is None else re.compile(plan.match),
                tuple(UserMetric(specs[u.name], u.path, u.per, u.function) for u in plan.user),
            )
        return self._scoring

    def metric_specs(self) -> dict[str, MetricSpec]:
        from mprtune.metrics.catalog import specs_for
        from mprtune.metrics.registry import MetricSpec

        plan = self.plan
        specs = specs_for(
            plan.metrics,
            plan.labels,
            plan.fields,
            normalize=plan.normalize,
            schema=plan.schema is not None,
            match=plan.match,
        )
        for u in plan.user:
            kind = "mean" if u.per == "row" else "corpus"
            specs[u.name] = MetricSpec(
                u.name, f"{u.description} (user metric {u.path})", kind, u.unit, u.better, u.target
            )
        return {name: specs[name] for name in plan.scalar_names}  # listed, user, then the ones always shown

    def score(self, rows: Sequence[EvalRow], outputs: Sequence[str]) -> SystemScores:
        from mprtune.metrics.custom_scoring import score_custom

        return score_custom(self.scoring(), rows, outputs)

    def presentation(self) -> Presentation:
        plan = self.plan
        names = plan.scalar_names
        summary = tuple(dict.fromkeys([plan.primary, "empty", "verbose"]))
        # the plot shows what the user named primary: "the one that moved most" would compare units
        return Presentation(plan.primary, summary, names, (plan.primary,), f"custom:{self.task}")

    # --- samples --------------------------------------------------------------------------------

    def good(self, tags: Mapping[str, Any]) -> bool:
        key = _GOOD_TAG.get(self.plan.primary) or self._default_good()
        if self.plan.primary in {u.name for u in self.plan.user if u.per == "row"}:
            key = self.plan.primary
        return bool(tags.get(key))

    def _default_good(self) -> str:
        if self.plan.labels:
            return "correct"
        return "json_match" if self.scoring().pipeline.parses_json else "exact"

    def describe_answer(self) -> str:
        from mprtune.metrics.extract import describe

        line = describe(self.plan.steps)
        if self.plan.labels:
            line += f"; labels {' | '.join(self.plan.labels)} (casefolded, surrounding punctuation ignored)"
        return line


def _always() -> tuple[str, ...]:
    from mprtune.metrics.catalog import ALWAYS

    return ALWAYS


__all__ = ["Custom", "Plan"]
