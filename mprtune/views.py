"""What the CLI prints: tables for plan, status, collect, prepare-data and score, and the live
progress view while `train` runs (a rich table on a terminal, plain event lines otherwise)."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, Callable

from mprtune.launch.queue import Event
from mprtune.launch.status import StatusRow, status_rows
from mprtune.workspace import Workspace


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def plan_lines(plan: Any, executor: Any, show_commands: bool) -> list[str]:
    """Decisions, the schedule (slot, start/end, makespan vs lower bound) and each job's command."""
    from mprtune.launch.train import describe_spec

    lines = [f"{d.variant:<32} {d.action:<7} {d.reason}" for d in plan.decisions]
    s = plan.schedule
    if s.placements:
        lines += ["", f"{'variant':<32} {'slot':<6} {'start':>10} {'end':>10} {'hours':>7}"]
        lines += [f"{p.variant:<32} {p.slot:<6} {p.start_s / 3600:>9.2f}h {p.end_s / 3600:>9.2f}h "
                  f"{(p.end_s - p.start_s) / 3600:>7.2f}" for p in s.placements]
        lines.append(f"makespan {s.makespan_s / 3600:.2f} h, lower bound max(total/slots, longest) "
                     f"{s.lower_bound_s / 3600:.2f} h, ratio {s.ratio:.3f}")
    if show_commands:
        slots = {p.variant: p.slot for p in s.placements}
        for spec in plan.specs:
            info = describe_spec(spec)
            slot = slots.get(spec.name)
            env = " ".join(f"{k}={v}" for k, v in sorted(info["env"].items()) if k != "PATH")
            lines += ["", f"# {spec.name} (slot {slot or '-'})", f"cd {info['cwd']}",
                      f"CUDA_VISIBLE_DEVICES={executor.devices(slot)} {env} " + " ".join(info["command"])]
            script = executor.describe(spec)
            if script:
                lines += [f"# what the backend submits for {spec.name}:", script.rstrip()]
    return lines


def train_summary(plan: Any, results: dict[str, Any], runs: Any) -> str:
    """What this `train` did: trained, failed, and what it left alone (reused, running, held back)."""
    trained = sum(1 for s in results.values() if s.state == "done")
    failed = sum(1 for s in results.values() if s.state == "failed")
    parts = [f"{trained} trained", f"{failed} failed"]
    skipped = [d.reason for d in (plan.decisions if plan else []) if d.action == "skip"]
    reused = sum(1 for r in skipped if r.startswith("finished"))
    running = sum(1 for r in skipped if r.startswith("running"))
    for count, what in ((reused, "reused (finished earlier, not retrained)"), (running, "already running"),
                        (len(skipped) - reused - running, "held back (see the reasons above)")):
        if count:
            parts.append(f"{count} {what}")
    return ", ".join(parts) + f"; runs in {runs}"


def failure_lines(results: dict[str, Any]) -> list[str]:
    """Each failed job with its reason and the end of its log."""
    lines = []
    for status in results.values():
        if status.state == "failed":
            lines.append(f"FAILED {status.name}: {status.reason}")
            lines += [f"    {line}" for line in (status.log_tail or "").splitlines()[-8:]]
    return lines


def detach_lines(results: dict[str, Any]) -> list[str]:
    lines = [f"submitted {status.name} as Slurm job {status.job_id}" for status in results.values()]
    return lines + [f"{len(results)} submitted; follow with `mprtune status`, stop with `mprtune cancel`"]


def status_table(rows: list[StatusRow]) -> str:
    def when(t: float | None) -> str:
        return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"

    lines = [f"{'variant':<32} {'state':<11} {'slot':<5} {'started':>8} {'finished':>8} {'step':>11} "
             f"{'loss':>7} {'eta':>8} {'retries':>7}  log"]
    for r in rows:
        step = f"{r.step}/{r.total_steps}" if r.step is not None else "-"
        lines.append(f"{r.variant:<32} {r.state:<11} {r.slot or '-':<5} {when(r.started_at):>8} "
                     f"{when(r.finished_at):>8} {step:>11} {_fmt(r.loss, '.4f'):>7} {r.eta or '-':>8} "
                     f"{r.retries:>7}  {r.log}")
        if r.reason:
            lines.append(f"{'':<32} reason: {r.reason}")
    return "\n".join(lines)


def collect_table(records: list[Any]) -> list[str]:
    lines = [f"{'variant':<32} {'state':<11} {'final':>7} {'best':>7} {'time s':>8} {'samp/s':>7} "
             f"{'adapter MB':>10}  checkpoints"]
    for r in records:
        size = r.adapter_bytes / 1e6 if r.adapter_bytes else None
        lines.append(f"{r.variant:<32} {r.state:<11} {_fmt(r.final_loss, '.4f'):>7} {_fmt(r.best_loss, '.4f'):>7} "
                     f"{_fmt(r.train_seconds, '.1f'):>8} {_fmt(r.samples_per_second, '.2f'):>7} "
                     f"{_fmt(size, '.2f'):>10}  {','.join(r.checkpoints) or '-'}")
    return lines


def prepare_table(report: Any) -> tuple[list[str], list[str]]:
    """(table lines for stdout, notes for stderr) of a prepare-data report."""
    header = ("file", "split", "rows", "bad", "overlong", "held-out", "dups")
    rows = [(f.file, f.split, str(f.rows), str(f.skipped_bad), str(f.dropped_overlong),
             str(f.counters.get("held_out_overlap_pairs", "-")), str(f.counters.get("duplicates", "-")))
            for f in report.files]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [header, *rows]]
    notes = []
    for f in report.files:
        notes += [f"skipped bad row: {example}" for example in f.bad_examples]
        if f.dropped_overlong:
            notes.append(f"{f.file}: dropped {f.dropped_overlong} rows longer than cutoff_len, e.g.")
            notes += [f"  {example}" for example in f.overlong_examples]
    lines.append(f"Wrote {len(report.files)} files and {report.manifest}")
    return lines, notes


def score_table(scores: dict[str, Any]) -> list[str]:
    lines = [f"{'metric':<16} {'value':>10} {'95% CI':>22} {'n':>6}"]
    for name, value in scores.items():
        ci = f"[{value['ci_low']:.4f}, {value['ci_high']:.4f}]" if value.get("ci_low") is not None else "-"
        lines.append(f"{name:<16} {value['value']:>10.4f} {ci:>22} {value['n']:>6}")
    return lines


def _table(rows: list[StatusRow]) -> Any:
    from rich.table import Table

    table = Table(title="mprtune train", expand=False)
    for column in ("variant", "state", "slot", "step", "loss", "eta", "retries"):
        table.add_column(column, justify="right" if column in ("step", "loss", "retries") else "left")
    for r in rows:
        step = f"{r.step}/{r.total_steps}" if r.step is not None else "-"
        table.add_row(r.variant, r.state, r.slot or "-", step, _fmt(r.loss, ".4f"), r.eta or "-", str(r.retries))
    return table


class Progress:
    """Events as lines; on a terminal also a status table refreshed every second."""

    def __init__(self, ws: Workspace, names: list[str], live: bool | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self.ws, self.names = ws, set(names)
        self.live = sys.stdout.isatty() if live is None else live
        self.echo = echo or (lambda line: print(line, flush=True))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None
        self.plan: Any = None  # the train plan, once shown

    def _rows(self) -> list[StatusRow]:
        return [r for r in status_rows(self.ws) if r.variant in self.names]

    def event(self, event: Event) -> None:
        self._say(event.line())

    def show_plan(self, plan: Any, executor: Any) -> None:
        """Print the plan's decisions and schedule, and keep it for the summary (`train_summary`)."""
        self.plan = plan
        self._say("\n".join(plan_lines(plan, executor, show_commands=False)))

    def _say(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, highlight=False)
        else:
            self.echo(text)

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
