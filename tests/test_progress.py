"""The live progress view renders the run folders' state (no processes)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from mprtune.config.matrix import load_matrix
from mprtune.launch.jobs import JobStatus
from mprtune.launch.queue import Event
from mprtune.launch.status import status_rows
from mprtune.views import Progress, live_table
from mprtune.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def test_live_table_shows_step_loss_and_state(tmp_path: Path, capsys) -> None:
    ws = Workspace(load_matrix(ROOT / "mprtune.yaml"), ROOT, tmp_path)
    run = tmp_path / "llama32_3b_grammar_lora"
    run.mkdir()
    (run / "trainer_log.jsonl").write_text(
        json.dumps({"current_steps": 7, "total_steps": 30, "loss": 1.25, "remaining_time": "0:01:10"}) + "\n"
    )
    JobStatus("llama32_3b_grammar_lora", "train", state="interrupted", slot="1").write(run / "mprtune-status.json")
    progress = Progress(ws, ["llama32_3b_grammar_lora", "llama31_8b_grammar_lora"], live=False)
    console = Console(file=io.StringIO(), width=120)
    console.print(live_table([r for r in status_rows(ws) if r.variant in progress.names]))
    text = console.file.getvalue()
    assert "7/30" in text and "1.2500" in text and "interrupted" in text and "pending" in text
    with progress:
        progress.event(Event("started", "llama31_8b_grammar_lora", "0", "attempt 1"))
    assert "[started] llama31_8b_grammar_lora (slot 0) attempt 1" in capsys.readouterr().out
