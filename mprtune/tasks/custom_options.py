"""The options of a custom task, read and checked once: the answer pipeline, labels, metrics, primary.

:func:`read_options` turns a task's kind-specific keys into a :class:`Plan` (defaults filled in)
and the problems as ``(key path below the task, message)``, every problem at once. See
:mod:`mprtune.tasks.custom` for the syntax. Light at import: the metrics modules it needs (pure
Python parsing, jsonschema for a schema) are imported when a custom task is checked.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mprtune.errors import show

USER_KEYS = ("name", "function", "per", "unit", "better", "target", "description")
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")
Problems = list[tuple[str, str]]


@dataclass(frozen=True)
class UserEntry:
    name: str
    path: str
    per: str
    unit: str
    better: str
    target: float | None
    description: str
    function: Any = field(compare=False, repr=False)


@dataclass
class Plan:
    """A custom task's options with the defaults filled in (see :mod:`mprtune.tasks.custom`)."""

    steps: list[Any] = field(default_factory=list)  # mprtune.metrics.extract.Step
    labels: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()  # built-in names as listed (or defaulted), unexpanded
    user: tuple[UserEntry, ...] = ()
    primary: str = ""
    normalize: str = "whitespace"
    schema: dict[str, Any] | None = None
    match: str | None = None
    fields: tuple[str, ...] = ()
    scalar_names: tuple[str, ...] = ()  # every scalar metric the task reports, in table order
    positions: dict[str, int] = field(default_factory=dict)  # where each metric is listed (for key paths)


def _did_you_mean(name: str, names: list[str]) -> str:
    found = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {found[0]!r}?" if found else ""


def _labels(raw: Any, problems: Problems) -> tuple[str, ...]:
    from mprtune.metrics.extract import normalize_label

    if raw is None:
        return ()
    if not raw:
        problems.append(("labels", "the label set is empty; list at least two labels"))
        return ()
    seen: dict[str, str] = {}
    for i, label in enumerate(raw):
        if not isinstance(label, str) or not normalize_label(label):
            hint = " (quote it: YAML reads yes/no/on/off as booleans)" if isinstance(label, bool) else ""
            problems.append((f"labels[{i}]", f"expected a non-empty string, got {show(label)}{hint}"))
            continue
        key = normalize_label(label)
        if key in seen:
            problems.append(
                (f"labels[{i}]", f"{label!r} repeats {seen[key]!r} (labels compare casefolded, without punctuation)")
            )
        seen.setdefault(key, label)
    if len(seen) == 1:
        problems.append(("labels", "a label set needs at least two labels"))
    return tuple(seen.values())


def _user_entry(raw: Mapping[str, Any], where: str, problems: Problems) -> UserEntry | None:
    from mprtune.metrics.registry import BETTER, UNITS
    from mprtune.metrics.user import PER, signature_problem
    from mprtune.tasks.registry import KindError, load_class

    before = len(problems)
    for key in raw:
        if key not in USER_KEYS:
            problems.append((f"{where}.{key}", f"unknown key; a user metric has {', '.join(USER_KEYS)}"))
    name, path = raw.get("name"), raw.get("function")
    per, unit, better = raw.get("per", "row"), raw.get("unit", "fraction"), raw.get("better", "higher")
    target, description = raw.get("target"), raw.get("description")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append((f"{where}.name", f"expected a metric name (letters, digits, _ . -), got {show(name)}"))
    if not isinstance(path, str) or ":" not in path:
        problems.append((f"{where}.function", f"expected a dotted path `package.module:function`, got {show(path)}"))
    for key, value, allowed in (("per", per, PER), ("unit", unit, UNITS), ("better", better, BETTER)):
        if value not in allowed:
            problems.append((f"{where}.{key}", f"expected one of {', '.join(allowed)}, got {show(value)}"))
    if (better == "closer") != (target is not None):
        problems.append((f"{where}.target", "give a number `target` exactly when better is closer"))
    elif target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))):
        problems.append((f"{where}.target", f"expected a number, got {show(target)}"))
    if description is not None and not isinstance(description, str):
        problems.append((f"{where}.description", f"expected a string, got {show(description)}"))
    if len(problems) > before:
        return None
    assert isinstance(name, str) and isinstance(path, str)
    try:
        function = load_class(path, what=f"metric {name!r}")
    except KindError as exc:
        problems.append((f"{where}.function", str(exc)))
        return None
    wrong = signature_problem(function, per)
    if wrong:
        problems.append((f"{where}.function", f"{path} {wrong}"))
        return None
    doc = (getattr(function, "__doc__", None) or "").strip().splitlines()
    text = description or (doc[0] if doc else f"User metric {path}.")
    return UserEntry(name, path, per, unit, better, None if target is None else float(target), text, function)


def _metrics(raw: Any, problems: Problems, positions: dict[str, int]) -> tuple[list[str], list[UserEntry]]:
    from mprtune.metrics.catalog import BUILTIN

    names: list[str] = []
    users: list[UserEntry] = []
    for i, item in enumerate(raw or []):
        where = f"metrics[{i}]"
        if isinstance(item, str):
            if item not in BUILTIN:
                hint = _did_you_mean(item, list(BUILTIN))
                problems.append((where, f"unknown metric {item!r}; expected one of {', '.join(BUILTIN)}{hint}"))
            elif item in names:
                problems.append((where, f"{item!r} is listed twice"))
            else:
                names.append(item)
                positions[item] = i
        elif isinstance(item, Mapping):
            entry = _user_entry(item, where, problems)
            if entry is not None and (entry.name in BUILTIN or entry.name in [u.name for u in users]):
                problems.append((f"{where}.name", f"{entry.name!r} is already a metric of this task"))
            elif entry is not None:
                users.append(entry)
        else:
            problems.append((where, f"expected a metric name or a user metric mapping, got {show(item)}"))
    if raw is not None and not raw:
        problems.append(("metrics", "list at least one metric (or leave the key out for the defaults)"))
    return names, users


def _needs(plan: Plan, declared_answer: bool, problems: Problems) -> None:
    from mprtune.metrics.catalog import JSON_METRICS, LABEL_METRICS

    parses = any(s.name == "json" for s in plan.steps)
    for name in plan.metrics:
        i = plan.positions.get(name)
        key = "metrics" if i is None else f"metrics[{i}]"  # a default metric: no position
        if name in LABEL_METRICS and not plan.labels:
            problems.append((key, f"{name} needs a label set: add `labels: [...]`"))
        if name in JSON_METRICS and not parses and declared_answer:
            problems.append((key, f"{name} needs a `json` step at the end of `answer`"))
        if name == "regex_match" and plan.match is None:
            problems.append((key, "regex_match needs a `match: PATTERN` the answer must match in full"))
    for i, step in enumerate(plan.steps):
        if step.name in ("label", "find_label") and not plan.labels:
            problems.append((f"answer[{i}]", f"the {step.name} step needs a label set: add `labels: [...]`"))
    if plan.schema is not None and not parses and declared_answer:
        problems.append(("json_schema", "a JSON Schema needs a `json` step at the end of `answer`"))


def read_options(options: Mapping[str, Any]) -> tuple[Plan, Problems]:  # noqa: C901 - one check per option
    from mprtune.metrics.catalog import ALWAYS, JSON_METRICS, LABEL_METRICS, NORMALIZE, specs_for
    from mprtune.metrics.extract import parse_steps
    from mprtune.metrics.structured import schema_fields, schema_problem

    problems: Problems = []
    plan = Plan()
    plan.labels = _labels(options.get("labels"), problems)
    names, users = _metrics(options.get("metrics"), problems, plan.positions)
    schema = options.get("json_schema")
    if schema is not None:
        wrong = schema_problem(schema)
        if wrong:
            problems.append(("json_schema", wrong))
        else:
            plan.schema = dict(schema)
    json_task = plan.schema is not None or any(n in JSON_METRICS for n in names)
    if not names and not users:
        names = list(LABEL_METRICS if plan.labels else JSON_METRICS if json_task else ("exact_match", "chrf"))
    plan.metrics, plan.user = tuple(names), tuple(users)
    raw_answer = options.get("answer")
    if raw_answer is None:
        json_task = json_task or any(n in JSON_METRICS for n in names)
        default = ["strip", "drop_preamble", "first_line", "label"] if plan.labels else ["strip"]
        raw_answer = ["strip", "code_fence", "json"] if json_task else default
    plan.steps, step_problems = parse_steps(raw_answer)
    problems += step_problems
    match = options.get("match")
    if match is not None:
        try:
            re.compile(match)
            plan.match = match
        except re.error as exc:
            problems.append(("match", f"the pattern does not compile: {exc}"))
    normalize = options.get("normalize", "whitespace")
    if normalize not in NORMALIZE:
        problems.append(("normalize", f"expected one of {', '.join(NORMALIZE)}, got {show(normalize)}"))
    else:
        plan.normalize = normalize
    fields = options.get("fields")
    if fields is not None and not all(isinstance(f, str) and f for f in fields):
        problems.append(("fields", f"expected a list of key names, got {show(fields)}"))
    plan.fields = tuple(fields or []) if fields is not None else tuple(schema_fields(plan.schema))
    _needs(plan, options.get("answer") is not None, problems)
    listed = [n for n in specs_for(plan.metrics, plan.labels, plan.fields) if n not in ALWAYS]
    scalar = [*listed, *(u.name for u in plan.user), *ALWAYS]
    plan.scalar_names = tuple(scalar)
    primary = options.get("primary")
    if primary is None:
        first = next((n for n in ("accuracy", "json_match", "exact_match") if n in scalar), None)
        plan.primary = first or scalar[0]  # the first listed metric (ALWAYS come last)
    elif primary not in scalar:
        why = " (not a scalar: it is shown as a table)" if primary == "confusion" else ""
        hint = "" if why else _did_you_mean(primary, scalar)
        problems.append(("primary", f"{primary!r} is not among this task's metrics{why}{hint}: {', '.join(scalar)}"))
    else:
        plan.primary = primary
    return plan, problems
