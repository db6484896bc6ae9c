"""Task kinds: how a task's eval rows are read, scored and shown. Built-ins and plugins alike.

See :mod:`.base` for the interface and :mod:`.registry` for how a kind is found by name.
"""

from __future__ import annotations

from mprtune.metrics.registry import KNOWLEDGE_ROW_KINDS, TASK_KINDS  # the built-ins with data preparers
from mprtune.tasks.base import DataLicence, Preparer, Presentation, TaskKind
from mprtune.tasks.registry import BUILTIN_KINDS, ENTRY_POINT_GROUP, KindError, known_kinds, resolve_kind

# One rough characters-per-token figure for planning and truncation estimates when no tokenizer is
# at hand (English text under Llama 3's tokenizer averages ~4; 3.5 errs on the side of "too long").
CHARS_PER_TOKEN = 3.5

__all__ = [
    "BUILTIN_KINDS",
    "CHARS_PER_TOKEN",
    "ENTRY_POINT_GROUP",
    "KNOWLEDGE_ROW_KINDS",
    "TASK_KINDS",
    "DataLicence",
    "KindError",
    "Preparer",
    "Presentation",
    "TaskKind",
    "known_kinds",
    "resolve_kind",
]
