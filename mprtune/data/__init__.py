"""`mprtune prepare-data`: public corpora -> alpaca JSONL that LLaMA-Factory loads, plus manifest.json.

Public API: `prepare_data(matrix, tasks, source, out_dir, skip_bad, on_overlong) -> PrepareReport`,
`PrepareReport`, `FileReport`, `DESCRIBE_PROMPT`, `MANIFEST_FILE`. See the corpus modules
(jfleg, paraphrase, knowledge) for the definitions of every row, truncation for the length guard.

Row format (alpaca; LLaMA-Factory's user turn is `instruction`, so the model sees exactly
"Fix: <text>"): training rows `{"id", "instruction": prompt + text, "input": "", "output"}`;
eval rows also carry `"source"` (the text without prompt) and `"references"` (all gold outputs,
`output` is the first), knowledge eval rows `"kind": "qa" | "description"`.
"""

from mprtune.data.common import MANIFEST_FILE, FileReport
from mprtune.data.prepare import PrepareReport, prepare_data
from mprtune.tasks.knowledge import DESCRIBE_PROMPT

__all__ = ["DESCRIBE_PROMPT", "MANIFEST_FILE", "FileReport", "PrepareReport", "prepare_data"]
