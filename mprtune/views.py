"""What the CLI prints: tables for plan, status, collect, prepare-data and score, and the live
progress view while `train` runs (a rich table on a terminal, plain event lines otherwise)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from mprtune.evaluate.sweeps import axis_value
from mprtune.launch.queue import Event
from mprtune.launch.status import StatusRow, status_rows
from mprtune.workspace import Workspace


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def sweep_lines(variants: list[Any], actions: dict[str, str]) -> list[str]:
    """Per sweep among `variants`: its grid, one row per variant with its axis values, gpus and action."""
    lines: list[str] = []
    grids: dict[str, list[Any]] = {}
    for variant in variants:
        if variant.sweep is not None:
            grids.setdefault(variant.sweep.sweep, []).append(variant)
    for sweep, members in grids.items():
        keys = list(members[0].sweep.as_dict())
        rows = [
            [v.name, *(axis_value(v.sweep.as_dict()[k]) for k in keys), str(v.gpus), actions.get(v.name, "-")]
            for v in members
        ]
        header = ["variant", *keys, "gpus", "action"]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines += [
            f"sweep {sweep}: {len(members)} variants",
            *(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                for row in [header, *rows]
            ),
            "",
        ]
    return lines


def plan_lines(plan: Any, executor: Any, show_commands: bool) -> list[str]:
    """Sweep grids, decisions, the schedule (slots, start/end, makespan vs lower bound), each job's command."""
    from mprtune.launch.train import describe_spec

    actions = {d.variant: d.action for d in plan.decisions}
    lines = sweep_lines(plan.variants, actions)
    name_width = max([32, *(len(d.variant) for d in plan.decisions)])
    lines += [f"{d.variant:<{name_width}} {d.action:<7} {d.reason}" for d in plan.decisions]
    s = plan.schedule
    if s.placements:
        slot_width = max([6, *(len(p.slot) for p in s.placements)])
        lines += ["", f"{'variant':<{name_width}} {'slot':<{slot_width}} {'start':>10} {'end':>10} {'hours':>7}"]
        lines += [
            f"{p.variant:<{name_width}} {p.slot:<{slot_width}} {p.start_s / 3600:>9.2f}h "
            f"{p.end_s / 3600:>9.2f}h {(p.end_s - p.start_s) / 3600:>7.2f}"
            for p in s.placements
        ]
        lines.append(
            f"makespan {s.makespan_s / 3600:.2f} h, lower bound max(slot-hours/slots, longest) "
            f"{s.lower_bound_s / 3600:.2f} h, ratio {s.ratio:.3f}"
        )
        lines += booking_lines(getattr(plan, "estimates", []))
    if show_commands:
        slots = {p.variant: p.slot for p in s.placements}
        for spec in plan.specs:
            info = describe_spec(spec)
            slot = slots.get(spec.name)
            env = " ".join(f"{k}={v}" for k, v in sorted(info["env"].items()) if k != "PATH")
            lines += [
                "",
                f"# {spec.name} (slot {slot or '-'})",
                f"cd {info['cwd']}",
                f"CUDA_VISIBLE_DEVICES={executor.devices(slot)} {env} " + " ".join(info["command"]),
            ]
            script = executor.describe(spec)
            if script:
                lines += [f"# what the backend submits for {spec.name}:", script.rstrip()]
    return lines


def booking_lines(estimates: list[Any]) -> list[str]:
    """Shape and GPU-hours per job spanning nodes, and what the whole plan books (nodes × GPUs × hours)."""
    if not any(e.nodes > 1 for e in estimates):
        return []
    lines = [
        f"  {e.variant}: {e.shape}, {e.gpu_seconds / 3600:.2f} GPU-hours ({e.seconds / 3600:.2f} h)"
        for e in estimates
        if e.nodes > 1
    ]
    total = sum(e.gpu_seconds for e in estimates) / 3600
    return [*lines, f"books {total:.2f} GPU-hours in all (nodes × GPUs per node × hours, every job)"]


def train_summary(plan: Any, results: dict[str, Any], runs: Any) -> str:
    """What this `train` did: trained, failed, and what it left alone (reused, running, held back)."""
    trained = sum(1 for s in results.values() if s.state == "done")
    failed = sum(1 for s in results.values() if s.state == "failed")
    parts = [f"{trained} trained", f"{failed} failed"]
    skipped = [d.reason for d in (plan.decisions if plan else []) if d.action == "skip"]
    reused = sum(1 for r in skipped if r.startswith("finished"))
    running = sum(1 for r in skipped if r.startswith("running"))
    for count, what in (
        (reused, "reused (finished earlier, not retrained)"),
        (running, "already running"),
        (len(skipped) - reused - running, "held back (see the reasons above)"),
    ):
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

    name = max([32, *(len(r.variant) for r in rows)])
    slot = max([5, *(len(r.slot or "") for r in rows)])  # a wide job's slots: "0,1"
    lines = [
        f"{'variant':<{name}} {'state':<11} {'slot':<{slot}} {'started':>8} {'finished':>8} {'step':>11} "
        f"{'loss':>7} {'eta':>8} {'retries':>7}  log"
    ]
    for r in rows:
        step = f"{r.step}/{r.total_steps}" if r.step is not None else "-"
        lines.append(
            f"{r.variant:<{name}} {r.state:<11} {r.slot or '-':<{slot}} {when(r.started_at):>8} "
            f"{when(r.finished_at):>8} {step:>11} {_fmt(r.loss, '.4f'):>7} {r.eta or '-':>8} "
            f"{r.retries:>7}  {r.log}"
        )
        if r.node_logs:
            nodes = f"{len(r.node_logs)} nodes, step/loss from rank 0; node logs: {', '.join(r.node_logs)}"
            lines.append(f"{'':<{name}} {nodes}")
        if r.reason:
            lines.append(f"{'':<{name}} reason: {r.reason}")
    return "\n".join(lines)


def collect_table(records: list[Any]) -> list[str]:
    lines = [
        f"{'variant':<32} {'state':<11} {'final':>7} {'best':>7} {'time s':>8} {'samp/s':>7} "
        f"{'adapter MB':>10}  checkpoints"
    ]
    for r in records:
        size = r.adapter_bytes / 1e6 if r.adapter_bytes else None
        lines.append(
            f"{r.variant:<32} {r.state:<11} {_fmt(r.final_loss, '.4f'):>7} {_fmt(r.best_loss, '.4f'):>7} "
            f"{_fmt(r.train_seconds, '.1f'):>8} {_fmt(r.samples_per_second, '.2f'):>7} "
            f"{_fmt(size, '.2f'):>10}  {','.join(r.checkpoints) or '-'}"
        )
    return lines


def prepare_table(report: Any) -> tuple[list[str], list[str]]:
    """(table lines for stdout, notes for stderr) of a prepare-data report."""
    header = ("file", "split", "rows", "bad", "overlong", "held-out", "dups")
    rows = [
        (
            f.file,
            f.split,
            str(f.rows),
            str(f.skipped_bad),
            str(f.dropped_overlong),
            str(f.counters.get("held_out_overlap_pairs", "-")),
            str(f.counters.get("duplicates", "-")),
        )
        for f in report.files
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
        )
        for row in [header, *rows]
    ]
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


def ready_lines(server: Any) -> list[str]:
    """What `mprtune serve` prints once the server answers: URL, settings, ready-to-paste examples."""
    from mprtune.serve.server import usage_examples

    curl, python = usage_examples(server)
    target = server.target
    return [
        f"Serving {target.served_name} ({target.system}) at {server.base_url} "
        f"(ready in {server.start_seconds:.1f} s; pid {server.pid}; log {server.log})",
        f"Generation as compared: greedy, max_new_tokens {target.max_new_tokens}; "
        f"settings from {target.settings_source}",
        "",
        curl,
        "",
        python,
        "",
        "Ctrl-C stops the server.",
    ]


def check_lines(result: dict) -> list[str]:
    """`serve --check`: parity, start time, memory, latency per concurrency, the first mismatches."""
    parity, server = result["parity"], result["server"]
    lines = [
        f"parity with compare: {parity['matches']}/{parity['rows']} identical after strip "
        f"({100 * parity['rate']:.1f}%); same answers at concurrency {result['latency'][-1]['concurrency']}: "
        f"{result['same_answers_under_load']}/{parity['rows']}",
        f"server start {server['start_seconds']:.1f} s; peak memory {server['peak_memory_mb']:.0f} MiB "
        f"({server['memory_kind']})",
        f"{'concurrency':>11} {'requests':>8} {'errors':>6} {'p50 s':>8} {'p95 s':>8} {'tokens/s':>9}",
    ]
    for level in result["latency"]:
        lines.append(
            f"{level['concurrency']:>11} {level['requests']:>8} {level['errors']:>6} "
            f"{_fmt(level['p50_s'], '.3f'):>8} {_fmt(level['p95_s'], '.3f'):>8} "
            f"{_fmt(level['tokens_per_second'], '.1f'):>9}"
        )
    for miss in parity["mismatches"][:10]:
        served = miss["served"] if miss["served"] is not None else f"ERROR {miss['error']}"
        lines.append(
            f"\nMISMATCH {miss['id']}: {miss['prompt'][:100]!r}\n  compare: {miss['stored'][:200]!r}\n"
            f"  served:  {served[:200]!r}"
        )
    if len(parity["mismatches"]) > 10:
        lines.append(f"... {len(parity['mismatches']) - 10} more in check.md")
    return lines


def live_table(rows: list[StatusRow]) -> Any:
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

    def __init__(
        self, ws: Workspace, names: list[str], live: bool | None = None, echo: Callable[[str], None] | None = None
    ) -> None:
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

    def __enter__(self) -> Progress:
        if self.live:
            from rich.live import Live

            self._live = Live(live_table(self._rows()), refresh_per_second=2, transient=False)
            self._live.__enter__()
            self._thread = threading.Thread(target=self._refresh, daemon=True)
            self._thread.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(1.0):
            self._live.update(live_table(self._rows()))

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._live.update(live_table(self._rows()))
            self._live.__exit__(kind, error, trace)
