"""`mprtune demo`: the whole pipeline on a CPU with the demo profile, start to report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mprtune.errors import MprtuneError
from mprtune.workspace import Workspace

DEMO_PROFILE = "demo"


def run_demo(say: Callable[[str], None], slots: int = 2, limit: int | None = None, profile: str = DEMO_PROFILE) -> Path:
    """models -> render -> train every variant of the profile on `slots` CPU slots -> collect -> compare."""
    from mprtune.config.render import render_project
    from mprtune.evaluate.compare import compare
    from mprtune.launch.backends.local import LocalExecutor
    from mprtune.launch.inventory import collect
    from mprtune.launch.train import train
    from mprtune.models import ensure_base_models

    ws = Workspace.open(profile=profile)
    say(f"1/5 models: {', '.join(str(p) for p in ensure_base_models(ws.matrix, ws.root)) or 'ready'}")
    outcome = render_project(ws.matrix, ws.render_dir, ws.data_dir, cache_dir=ws.cache_dir)
    say(f"2/5 rendered {len(outcome.written)} files into {ws.render_dir}")
    variants = ws.variants()
    event = lambda e: say("    " + e.line())
    results = train(ws, variants, LocalExecutor(cpu_slots=slots), retries=1, on_event=event)
    failed = [s.name for s in results.values() if s.state == "failed"]
    if failed:
        raise MprtuneError(f"demo training failed for {', '.join(failed)}; see `mprtune status --profile {profile}`")
    trained = sum(1 for s in results.values() if s.state == "done")
    reused = len(variants) - len(results)
    say(f"3/5 trained {trained} variant(s), reused {reused} finished run(s) in {ws.runs}")
    _, written = collect(ws, ws.runs)
    say(f"4/5 collected: {', '.join(p.name for p in written)}")
    report = compare(ws, variants, LocalExecutor(cpu_slots=slots), limit, ws.reports_dir, on_event=event)
    say(f"5/5 compared base vs tuned for {len(variants)} variants ({report.predictions_line()})")
    if report.wandb:
        say(f"    {report.wandb}")
    return report.report_dir / "report.md"
