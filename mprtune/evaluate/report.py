"""Write `mprtune compare`'s outputs: results.json, samples.csv, report.md and two PNG plots.

Everything in report.md is derived from the results dict (validated against
:data:`mprtune.evaluate.schema.RESULTS_SCHEMA` first), so the report never states a verdict the
numbers do not carry: a difference is marked only when its paired interval excludes 0, and
"better" comes from the metric registry (`improvement`: higher, lower, or closer to a target).
Markdown, JSON and CSV are byte-for-byte deterministic for a given input; PNG bytes are not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.config.render import render_template, yaml_scalar
from mprtune.evaluate.figures import metric_panels
from mprtune.evaluate.formatting import (
    MISSING,
    format_diff,
    format_duration,
    format_memory,
    format_rate,
    format_seconds,
    format_stat,
    label,
    md_cell,
    optional,
    verdict,
    within_noise,
)
from mprtune.evaluate.presentation import confusion_tables, presentation_of
from mprtune.evaluate.schema import validate_results
from mprtune.evaluate.sweeps import SweepSection, Verdict, sweep_sections
from mprtune.io import atomic_write
from mprtune.metrics.registry import METRICS
from mprtune.plots import plot_loss_curves, plot_panels

TEMPLATE = "report.md.j2"
CELL_LIMIT = 300  # characters of a sample shown in report.md; samples.csv has the full text

COMMON_METRICS = ("exact_match", "empty", "verbose", "length_gap", "output_words", "length_ratio")
# Candidates for a task kind's plot panel; knowledge shows the one that moved most (QA or descriptions).
DATA_METRICS = frozenset({"reference_words"})  # a property of the eval rows: baseline == tuned


@dataclass(frozen=True)
class ReportFiles:
    report_md: Path
    results_json: Path
    samples_csv: Path
    plots: list[Path]


# --- the report's view of the results ---------------------------------------------------------


def ordered_metrics(names: Iterable[str], table: Sequence[str]) -> list[str]:
    """The task's table metrics first (main metric leading), then the shared ones, then any others."""
    present = [n for n in names if n not in DATA_METRICS]
    preferred = list(dict.fromkeys([*table, *COMMON_METRICS]))
    registry = list(METRICS)
    rest = sorted(
        (n for n in present if n not in preferred),
        key=lambda n: (registry.index(n) if n in registry else len(registry), n),
    )
    return [n for n in preferred if n in present] + rest


def better_text(spec: Mapping[str, Any]) -> str:
    better = spec["better"]
    return f"closer to {spec['target']:g}" if better == "closer" else "—" if better == "none" else better


class _View:
    """Formats one validated results dict; the template only lays the strings out."""

    def __init__(self, results: Mapping[str, Any]) -> None:
        self.r = results
        self.specs = results["metrics"]

    def stat(self, stat: Mapping[str, Any] | None, name: str, with_ci: bool = True) -> str:
        return format_stat(stat, self.specs[name]["unit"], with_ci) if name in self.specs else MISSING

    def diff(self, v: Mapping[str, Any], name: str, marker: bool = True) -> str:
        if name not in self.specs:
            return MISSING
        diff = v["diff"].get(name)
        mark = verdict(
            name, v["baseline"]["metrics"].get(name), v["tuned"]["metrics"].get(name), diff, self.specs[name]
        )
        return format_diff(diff, self.specs[name]["unit"], mark if marker else "")

    def summary(self, v: Mapping[str, Any]) -> str:
        parts = []
        for name in presentation_of(v)["summary"]:
            base, tuned = v["baseline"]["metrics"].get(name), v["tuned"]["metrics"].get(name)
            if base is None or tuned is None:
                continue
            diff = v["diff"].get(name)
            change = ""
            if diff is not None:
                mark = verdict(name, base, tuned, diff, self.specs.get(name))
                note = f" {mark}" if mark else (", within noise" if within_noise(diff) else "")
                change = f" ({self.diff(v, name, marker=False)}{note})"
            parts.append(f"{label(name)} {self.stat(base, name, False)} → {self.stat(tuned, name, False)}{change}")
        head = f"`{v['variant']}` ({v['task']}, {v['n_rows']} rows)"
        return f"{head}: " + "; ".join(parts) if parts else f"{head}: no shared metrics"

    def model_lines(self) -> list[str]:
        lines = []
        for m in self.r["models"]:
            what = (
                " — **random weights: a test model; its numbers prove the pipeline works, never that "
                "fine-tuning helps**"
                if m["random_weights"]
                else ""
            )
            note = f": {md_cell(m['note'])}" if m["note"] else ""
            lines.append(f"`{m['name']}` = `{m['path']}`{note}{what}")
        return lines

    def task_sections(self) -> list[dict[str, Any]]:
        tasks: dict[str, dict[str, Any]] = {}
        for v in self.r["variants"]:
            task = tasks.setdefault(v["task"], {"name": v["task"], "kind": v["task_kind"], "variants": []})
            names = ordered_metrics(
                set(v["baseline"]["metrics"]) | set(v["tuned"]["metrics"]), presentation_of(v)["table"]
            )
            rows = [
                [
                    label(n),
                    self.stat(v["baseline"]["metrics"].get(n), n),
                    self.stat(v["tuned"]["metrics"].get(n), n),
                    self.diff(v, n),
                ]
                for n in names
            ]
            ref_words = v["baseline"]["metrics"].get("reference_words")
            note = f"; references average {ref_words['value']:.1f} words" if ref_words else ""
            task["variants"].append(
                {
                    "model": v["model"],
                    "variant": v["variant"],
                    "model_path": v["model_path"],
                    "note": f"{v['n_rows']} rows of {', '.join(v['eval_datasets'])}{note}",
                    "rows": rows,
                    "answer": md_cell(presentation_of(v).get("answer", "")) if presentation_of(v).get("answer") else "",
                    "confusion": confusion_tables(v),
                }
            )
        return list(tasks.values())

    def quantitative_rows(self) -> list[list[str]]:
        rows = []
        for v in self.r["variants"]:
            main = presentation_of(v)["primary"]
            for system in ("baseline", "tuned"):
                m, t = v[system]["metrics"], v[system]["timing"]
                latency = t.get("latency") or {}
                rows.append(
                    [
                        f"`{v['variant']}`",
                        system,
                        *(
                            self.stat(m.get(n), n, with_ci=False)
                            for n in (
                                "output_words",
                                "length_gap",
                                "exact_match",
                                "acceptable",
                                "over_corrects",
                                "empty",
                                "verbose",
                            )
                        ),
                        f"{label(main)} {self.stat(m[main], main, with_ci=False)}" if main in m else MISSING,
                        format_seconds(latency.get("p50_seconds")),
                        format_seconds(t["seconds_per_sample"]),
                        format_rate(t.get("output_tokens_per_second")),
                        format_memory(t["peak_memory_mb"], t["memory_kind"], t.get("reserved_memory_mb")),
                        md_cell(t.get("resources") or MISSING),
                    ]
                )
        return rows

    def sample_sections(self) -> list[dict[str, Any]]:
        sections: dict[str, list[list[str]]] = {}
        for s in self.r["samples"]:
            tags = (
                f"baseline: {', '.join(s['baseline_tags']) or 'none'}<br>tuned: {', '.join(s['tuned_tags']) or 'none'}"
            )
            sections.setdefault(s["variant"], []).append(
                [
                    f"{s['row']} ({md_cell(s['id'])})",
                    *(
                        md_cell(s[key], CELL_LIMIT)
                        for key in ("source", "reference", "baseline_output", "tuned_output")
                    ),
                    tags,
                ]
            )
        order = [v["variant"] for v in self.r["variants"]]
        return [{"variant": name, "rows": sections[name]} for name in order if name in sections]

    def sweep_note(self, found: Verdict, section: SweepSection) -> str:
        stat = self.stat(
            next(r["stats"][found.metric] for r in section.rows if r["variant"] == found.best), found.metric
        )
        if found.equal:
            return f"{label(found.metric)}: every variant scores {stat}; nothing to choose."
        if found.clear:
            return f"{label(found.metric)}: `{found.best}` is best ({stat}); its interval is clear of every other's."
        others = (
            "every other variant"
            if len(found.tied) == section.compared - 1
            else ", ".join(f"`{name}`" for name in found.tied)
        )
        return (
            f"{label(found.metric)}: no winner. The best point estimate, `{found.best}` ({stat}), is within "
            f"noise of {others} (intervals overlap)."
        )

    def sweeps(self) -> list[dict[str, Any]]:
        sections = []
        for s in sweep_sections(self.r):
            rows = []
            for row in s.rows:
                marks = {
                    m: (" ★" if v.clear else " ☆")
                    for m, v in s.verdicts.items()
                    if v.best == row["variant"] and not v.equal
                }
                rows.append(
                    [
                        f"`{row['variant']}`",
                        *(md_cell(row["values"][k]) for k in s.keys),
                        *(self.stat(row["stats"][m], m) + marks.get(m, "") for m in s.metrics),
                    ]
                )
            notes = [self.sweep_note(v, s) for v in s.verdicts.values()] or [
                "Only one variant of this sweep was compared: nothing to rank."
            ]
            sections.append(
                {
                    "name": s.name,
                    "base": s.base,
                    "axes": s.axes_text,
                    "rows": rows,
                    "notes": notes,
                    "compared": f"{s.compared} of {s.grid_size}",
                    "header": ["Variant", *s.keys, *(label(m) for m in s.metrics)],
                    "align": "l" * (1 + len(s.keys)) + "r" * len(s.metrics),
                }
            )
        return sections

    def training_rows(self) -> list[list[str]]:
        return [
            [
                f"`{t['variant']}`",
                t["state"],
                format_duration(t["train_seconds"]),
                optional(t["final_loss"], ".4f"),
                optional(t["best_loss"], ".4f"),
                optional(t["steps"], "d"),
                format_rate(t["samples_per_second"]),
                MISSING if t["adapter_bytes"] is None else f"{t['adapter_bytes'] / 2**20:.1f} MiB",
            ]
            for t in self.r["training"]
        ]

    def recipe_rows(self) -> list[list[str]]:
        def flat(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
            if isinstance(value, dict):
                for key in sorted(value):
                    yield from flat(f"{prefix}.{key}" if prefix else key, value[key])
            else:
                yield prefix, value

        return [
            [f"`{key}`", md_cell(value if isinstance(value, str) else yaml_scalar(value))]
            for key, value in flat("", self.r["recipe"])
        ]

    def metric_rows(self) -> list[list[str]]:
        registry = list(METRICS)
        names = sorted(self.specs, key=lambda n: (registry.index(n) if n in registry else len(registry), n))
        return [
            [
                label(n),
                f"`{n}`",
                better_text(self.specs[n]),
                self.specs[n]["unit"],
                self.specs[n]["kind"],
                md_cell(self.specs[n]["description"]),
            ]
            for n in names
        ]

    def provenance_lines(self) -> list[str]:
        p = self.r["provenance"]
        versions = ", ".join(f"{k} {v}" for k, v in p["versions"].items() if v)
        data = "; ".join(f"`{path}` {sha[:12]}" for path, sha in p["eval_data_sha256"].items())
        return [
            f"versions: {versions}",
            f"project commit: `{p['git_commit'] or 'not a git checkout'}`",
            f"matrix sha256: `{p['matrix_sha256'][:12]}`",
            f"eval rows sha256: {data or '–'}",
        ]

    def context(self) -> dict[str, Any]:
        r = self.r
        return {
            "profile": r["profile"],
            "created_at": r["created_at"],
            "matrix": r["matrix"],
            "confidence": f"{r['confidence'] * 100:g}%",
            "models": self.model_lines(),
            "summaries": [self.summary(v) for v in r["variants"]],
            "tasks": self.task_sections(),
            "sweeps": self.sweeps(),
            "quantitative": self.quantitative_rows(),
            "samples": self.sample_sections(),
            "training": self.training_rows(),
            "recipe": self.recipe_rows(),
            "metric_rows": self.metric_rows(),
            "cell_limit": CELL_LIMIT,
            "provenance": self.provenance_lines(),
        }


def render_report(results: Mapping[str, Any]) -> str:
    """report.md's text for a validated results dict (no files touched)."""
    return render_template(TEMPLATE, **_View(results).context())


# --- files ------------------------------------------------------------------------------------

SAMPLE_COLUMNS = (
    "variant",
    "row",
    "id",
    "source",
    "references",
    "baseline_output",
    "tuned_output",
    "baseline_tags",
    "tuned_tags",
)


def samples_csv(samples: Sequence[Mapping[str, Any]]) -> str:
    """Every shown sample with its full texts; `references` is a JSON list (all of them), tags `;`-joined."""
    import pandas as pd

    table = pd.DataFrame([{c: s[c] for c in SAMPLE_COLUMNS} for s in samples], columns=list(SAMPLE_COLUMNS))
    for column in ("baseline_tags", "tuned_tags"):
        table[column] = table[column].map(";".join)
    table["references"] = table["references"].map(lambda refs: json.dumps(refs, ensure_ascii=False))
    return table.to_csv(index=False, lineterminator="\n")


def write_report(
    results: dict[str, Any], out_dir: Path, loss_curves: dict[str, list[tuple[int, float]]]
) -> ReportFiles:
    """Validate ``results``, then write results.json, samples.csv, the plots and report.md."""
    validate_results(results)
    out_dir = Path(out_dir)
    files = ReportFiles(out_dir / "report.md", out_dir / "results.json", out_dir / "samples.csv", [])
    atomic_write(files.results_json, json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    atomic_write(files.samples_csv, samples_csv(results["samples"]))
    confidence = f"{results['confidence'] * 100:g}%"
    files.plots.append(
        plot_panels(
            metric_panels(results),
            out_dir / "metrics.png",
            f"Baseline vs tuned (error bars: {confidence} bootstrap intervals)",
        )
    )
    files.plots.append(plot_loss_curves(loss_curves, out_dir / "loss_curves.png"))
    atomic_write(files.report_md, render_report(results))
    return files
