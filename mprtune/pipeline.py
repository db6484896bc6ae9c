"""`mprtune demo`: the whole pipeline on a CPU with the demo profile, start to report."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from mprtune import paths
from mprtune.errors import MprtuneError
from mprtune.matrix import load_matrix
from mprtune.models import ensure_base_models

DEMO_PROFILE = "demo"


def run_demo(root: Path, say: Callable[[str], None], slots: int = 2, limit: int | None = None) -> Path:
    """tiny models -> render -> train every demo variant on `slots` CPU slots -> collect -> compare."""
    from mprtune.collect import collect
    from mprtune.compare import compare
    from mprtune.launcher import train
    from mprtune.local_executor import LocalExecutor
    from mprtune.render import render_project

    matrix = load_matrix(root / paths.MATRIX_FILE, DEMO_PROFILE)
    runs = paths.runs_dir(DEMO_PROFILE)
    say(f"1/5 tiny models: {', '.join(str(p) for p in ensure_base_models(matrix, root))}")
    outcome = render_project(matrix, paths.profile_render_dir(DEMO_PROFILE), cache_dir=paths.cache_dir())
    say(f"2/5 rendered {len(outcome.written)} files into {paths.profile_render_dir(DEMO_PROFILE)}")
    variants = list(matrix.variants.values())
    results = train(matrix, variants, runs, root, LocalExecutor(cpu_slots=slots), retries=1,
                    on_event=lambda e: say(f"    [{e.kind}] {e.name} (slot {e.slot}) {e.message}".rstrip()))
    failed = [s.name for s in results.values() if s.state == "failed"]
    if failed:
        raise MprtuneError(f"demo training failed for {', '.join(failed)}; see `mprtune status --profile demo`")
    say(f"3/5 trained {len(variants)} variants in {runs}")
    _, written = collect(matrix, runs, runs)
    say(f"4/5 collected: {', '.join(p.name for p in written)}")
    report = compare(matrix, variants, runs, root, LocalExecutor(cpu_slots=slots), limit, root / "reports",
                     on_event=lambda e: say(f"    [{e.kind}] {e.name} (slot {e.slot})"))
    say(f"5/5 compared base vs tuned for {len(variants)} variants")
    return report.report_dir / "report.md"
