"""The task kinds mprtune knows how to prepare and score; every layer reads them from here."""

from __future__ import annotations

TASK_KINDS = ("grammar", "paraphrase", "knowledge")
# Knowledge eval rows are either short-answer questions or entity descriptions, scored differently.
KNOWLEDGE_ROW_KINDS = ("qa", "description")
# One rough characters-per-token figure for planning and truncation estimates when no tokenizer is
# at hand (English text under Llama 3's tokenizer averages ~4; 3.5 errs on the side of "too long").
CHARS_PER_TOKEN = 3.5
