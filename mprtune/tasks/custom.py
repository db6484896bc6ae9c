"""Placeholder until the custom kind lands (its own branch)."""

from __future__ import annotations

from mprtune.tasks.base import TaskKind


class Custom(TaskKind):
    name = "custom"
    prompt_required = False
