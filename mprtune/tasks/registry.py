"""Task kinds by name: the built-ins, the `mprtune.task_kinds` entry-point group, or a dotted path.

A name that is none of them is an error that lists what exists and suggests the nearest name;
nothing falls back to another kind. Built-ins are plugins like any other: a name and a class path.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from functools import lru_cache

from mprtune.errors import MprtuneError, show
from mprtune.tasks.base import TaskKind

ENTRY_POINT_GROUP = "mprtune.task_kinds"
BUILTIN_KINDS = {
    "grammar": "mprtune.tasks.grammar:Grammar",
    "paraphrase": "mprtune.tasks.paraphrase:Paraphrase",
    "knowledge": "mprtune.tasks.knowledge:Knowledge",
    "custom": "mprtune.tasks.custom:Custom",
}


class KindError(MprtuneError):
    """A task kind that cannot be found or loaded (the message says what exists)."""


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, str]:
    # Read only when a name is not built in: importlib.metadata costs start-up time `render` need not pay.
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_kinds(with_plugins: bool = True) -> dict[str, str]:
    """Kind name -> `module:Class`, built-ins first, then installed plugins."""
    return {**BUILTIN_KINDS, **(_entry_points() if with_plugins else {})}


def load_class(path: str, what: str = "task kind") -> object:
    """The object at `module:attribute` (or `module.attribute`); KindError with the reason otherwise."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise KindError(f"{show(path)} is not a dotted path; write it as `package.module:Name`")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise KindError(
            f"{what} {show(path)}: cannot import {module_name} ({exc}); install it or fix the path"
        ) from None
    except Exception as exc:  # a plugin that fails while importing: name it instead of a traceback
        raise KindError(f"{what} {show(path)}: importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise KindError(f"{what} {show(path)}: {module_name} has no {attribute!r}") from None


def resolve_kind(name: str) -> type[TaskKind]:
    """The class of kind `name`: a built-in or entry-point name, or a dotted path `module:Class`."""
    if not isinstance(name, str) or not name:
        raise KindError(f"expected a task kind name, got {show(name)}")
    if name in BUILTIN_KINDS:
        path = BUILTIN_KINDS[name]
    elif ":" in name:
        path = name
    else:
        kinds = known_kinds()
        if name not in kinds:
            close = difflib.get_close_matches(name, list(kinds), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise KindError(
                f"expected one of {', '.join(kinds)} or a dotted path `module:Class`, got {show(name)}{hint}"
            )
        path = kinds[name]
    found = load_class(path)
    if not (inspect.isclass(found) and issubclass(found, TaskKind)):
        raise KindError(f"task kind {show(name)}: {path} is not a subclass of mprtune.tasks.TaskKind")
    if not isinstance(getattr(found, "name", None), str):
        raise KindError(f"task kind {show(name)}: {path} sets no `name`")
    return found
