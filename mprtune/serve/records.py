"""The files a serving check leaves: check.json/.md in the run folder, copies beside the latest report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mprtune.config.render import render_template
from mprtune.io import atomic_write
from mprtune.serve.target import ServeTarget

CHECK_FILE = "check.json"
CHECK_MD = "check.md"


def latest_report(reports: Path, variant: str) -> Path | None:
    """The newest reports/<timestamp>/ whose results.json compares `variant` (names sort by time)."""
    if not reports.is_dir():
        return None
    for folder in sorted((p for p in reports.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        try:
            results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if any(entry.get("variant") == variant for entry in results.get("variants", [])):
            return folder
    return None


def check_markdown(result: dict[str, Any]) -> str:
    from mprtune.evaluate.formatting import md_cell

    return render_template("serve_check.md.j2", r=result, cell=md_cell)


def write_check(result: dict[str, Any], target: ServeTarget, reports: Path) -> list[Path]:
    """check.json + check.md in the serve folder, and serve-<name>.json/.md next to the latest report."""
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    markdown = check_markdown(result)
    written = [target.serve_folder / CHECK_FILE, target.serve_folder / CHECK_MD]
    report = latest_report(reports, target.variant.name)
    if report is not None:
        written += [report / f"serve-{target.served_name}.json", report / f"serve-{target.served_name}.md"]
    for path in written:
        atomic_write(path, text if path.suffix == ".json" else markdown)
    return written


def read_check(target: ServeTarget) -> dict[str, Any] | None:
    try:
        return json.loads((target.serve_folder / CHECK_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
