"""The live view while `train` runs: a rich table refreshed every second on a terminal, plain
event lines otherwise (logs, CI, pipes)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import TracebackType

from mprtune.matrix import Matrix
from mprtune.queue import Event
from mprtune.status import StatusRow, status_rows


def _table(rows: list[StatusRow]):
    from rich.table import Table

    table = Table(title="mprtune train", expand=False)
    for column in ("variant", "state", "slot", "step", "loss", "eta", "retries"):
        table.add_column(column, justify="right" if column in ("step", "loss", "retries") else "left")
    for r in rows:
        step = f"{r.step}/{r.total_steps}" if r.step is not None else "-"
        table.add_row(r.variant, r.state, r.slot or "-", step, f"{r.loss:.4f}" if r.loss is not None else "-",
                      r.eta or "-", str(r.retries))
    return table


class Progress:
    def __init__(self, matrix: Matrix, runs: Path, names: list[str], live: bool | None = None) -> None:
        self.matrix, self.runs, self.names = matrix, runs, set(names)
        self.live = sys.stdout.isatty() if live is None else live
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = None

    def _rows(self) -> list[StatusRow]:
        return [r for r in status_rows(self.matrix, self.runs) if r.variant in self.names]

    def event(self, event: Event) -> None:
        line = f"[{event.kind}] {event.name} (slot {event.slot}) {event.message}".rstrip()
        if self._live is not None:
            self._live.console.print(line, highlight=False)
        else:
            print(line, flush=True)

    def __enter__(self) -> "Progress":
        if self.live:
            from rich.live import Live

            self._live = Live(_table(self._rows()), refresh_per_second=2, transient=False)
            self._live.__enter__()
            self._thread = threading.Thread(target=self._refresh, daemon=True)
            self._thread.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(1.0):
            self._live.update(_table(self._rows()))

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._live.update(_table(self._rows()))
            self._live.__exit__(kind, error, trace)
