"""What every layer says about one eval row: its conversation, its references, and one system's answer to it.

Plain data, no behaviour: the data layer reads rows into these, task kinds (mprtune.tasks) score
them, the report shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Conversation:
    """One row as LLaMA-Factory turns it into a prompt: system, earlier turns, the last user turn and its answer.

    For alpaca rows the user turn is ``instruction + "\\n" + input`` (as LLaMA-Factory joins them);
    for sharegpt rows it is the last user turn, and ``assistant`` the last assistant turn after it.
    """

    user: str
    assistant: str
    system: str = ""
    history: tuple[tuple[str, str], ...] = ()  # earlier (user, assistant) turns, oldest first


@dataclass(frozen=True)
class EvalRow:
    """One held-out row: what the model is asked, what counts as right, and what LLaMA-Factory echoes back.

    ``output`` is the label LLaMA-Factory sees and writes back beside each prediction; every
    prediction is checked against it, so no output is ever scored against another row.
    """

    id: str
    source: str  # the input without the task prompt (built-in kinds) or the last user turn (custom data)
    references: tuple[str, ...]
    row_type: str  # a kind's own split of its rows (knowledge: qa | description); else the kind's name
    prompt: str  # the user turn LLaMA-Factory builds
    output: str  # the label LLaMA-Factory sees (and echoes back in generated_predictions.jsonl)
    system: str = ""  # the row's own system prompt, if its dataset has one
    history: tuple[tuple[str, str], ...] = ()
    fields: dict[str, Any] = field(default_factory=dict, compare=False)  # the raw row, for user metrics


def chat_messages(row: EvalRow) -> list[dict[str, str]]:
    """The row as an OpenAI-style conversation: its own system turn (if any), earlier turns, the user turn.

    Without a system turn of its own the server's default system prompt applies, as in prediction.
    """
    messages = [{"role": "system", "content": row.system}] if row.system else []
    for user, assistant in row.history:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return [*messages, {"role": "user", "content": row.prompt}]


@dataclass
class ScoredRow:
    """One system's output on one row, with what the task kind made of it."""

    row: EvalRow
    output: str  # the raw model output (stripped)
    answer: str | None  # the task's extracted answer; None when nothing could be extracted
    tags: dict[str, Any] = field(default_factory=dict)  # per-row values (EXACT, VERBOSE, ...), shown in samples
