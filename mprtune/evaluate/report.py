"""Write `mprtune compare`'s outputs: results.json, samples.csv, report.md and two PNG plots.

Everything in report.md is derived from the results dict (validated against
:data:`mprtune.results_schema.RESULTS_SCHEMA` first), so the report never states a verdict the
numbers do not carry: a difference is called significant only when its confidence interval
excludes 0, and "good"/"bad" comes from the metric's ``higher_is_better``. Markdown, JSON and
CSV are byte-for-byte deterministic for a given input; PNG bytes are not promised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.config.render import render_template, yaml_scalar
from mprtune.evaluate.schema import validate_results
from mprtune.evaluate.sweeps import SweepSection, Verdict, sweep_sections
from mprtune.io import atomic_write
from mprtune.metrics.registry import METRICS
from mprtune.plots import Bar, Panel, plot_loss_curves, plot_panels
from mprtune.tasks import TASK_KINDS

TEMPLATE = "report.md.j2"
MISSING = "–"
CELL_LIMIT = 300  # characters of a sample shown in report.md; samples.csv has the full text

MAIN_METRIC = {"grammar": "gleu", "paraphrase": "ibleu", "knowledge": "qa_f1"}
SUMMARY_METRICS = {
    "grammar": ("gleu", "exact_match", "verbose", "over_corrects"),
    "paraphrase": ("ibleu", "exact_match", "verbose", "copy_rate"),
    "knowledge": ("qa_f1", "rouge_l", "verbose"),
}
TABLE_METRICS = {
    "grammar": ("gleu", "acceptable", "over_corrects"),
    "paraphrase": ("ibleu", "bleu", "self_bleu", "copy_rate"),
    "knowledge": ("qa_f1", "qa_exact_match", "rouge_l"),
}
COMMON_METRICS = ("exact_match", "verbose", "output_words", "length_ratio")
DATA_METRICS = frozenset({"reference_words"})  # a property of the eval rows: baseline == tuned
LABELS = {
    "exact_match": "exact match", "verbose": "verbosity", "output_words": "output words",
    "reference_words": "reference words", "length_ratio": "length ratio", "gleu": "GLEU",
    "acceptable": "acceptable", "over_corrects": "over-corrections", "bleu": "BLEU",
    "self_bleu": "self-BLEU", "ibleu": "iBLEU", "copy_rate": "copy rate",
    "qa_exact_match": "QA exact match", "qa_f1": "QA F1", "rouge_l": "ROUGE-L",
}
_DECIMALS = {"output_words": 1, "reference_words": 1, "length_ratio": 2, "bleu": 2,
             "self_bleu": 2, "ibleu": 2}
_MD_SPECIAL = "\\`*<>|"  # not "_": intraword underscores (ids, names) are literal in GFM


@dataclass(frozen=True)
class ReportFiles:
    report_md: Path
    results_json: Path
    samples_csv: Path
    plots: list[Path]


# --- formatting ------------------------------------------------------------------------------

def label(name: str) -> str:
    return LABELS.get(name, name)


def _decimals(name: str, kind: str) -> int:
    return 1 if kind == "rate" else _DECIMALS.get(name, 3)


def _fixed(x: float, d: int) -> str:
    text = f"{x:.{d}f}"
    return text.lstrip("-") if float(text) == 0 else text  # never "-0.0"


def _signed(x: float, d: int) -> str:
    text = _fixed(x, d)
    return text if float(text) == 0 or text.startswith("-") else "+" + text


def _interval(stat: Mapping[str, Any], fmt: Any) -> str:
    low, high = stat.get("ci_low"), stat.get("ci_high")
    return "" if low is None or high is None else f" [{fmt(low)}, {fmt(high)}]"


def format_stat(stat: Mapping[str, Any] | None, name: str, kind: str, with_ci: bool = True) -> str:
    """`41.2% [38.0, 44.5]` for rates (fractions shown as percent), `0.412 [0.390, 0.433]` else."""
    if stat is None:
        return MISSING
    scale, d = (100.0, 1) if kind == "rate" else (1.0, _decimals(name, kind))
    fmt = lambda x: _fixed(x * scale, d)
    unit = "%" if kind == "rate" else ""
    return fmt(stat["value"]) + unit + (_interval(stat, fmt) if with_ci else "")


def significance(diff: Mapping[str, Any], higher_is_better: bool) -> str:
    """✓ when the interval excludes 0 on the good side, ✗ on the bad side, "" otherwise."""
    low, high = diff.get("ci_low"), diff.get("ci_high")
    if low is None or high is None or low <= 0 <= high:
        return ""
    return "✓" if (low > 0) == higher_is_better else "✗"


def format_diff(diff: Mapping[str, Any] | None, name: str, kind: str, higher_is_better: bool,
                marker: bool = True) -> str:
    """`+12.3 pp [+8.1, +16.0] ✓` for rates (percentage points), `+0.126 [+0.102, +0.151]` else."""
    if diff is None:
        return MISSING
    scale, d = (100.0, 1) if kind == "rate" else (1.0, _decimals(name, kind))
    fmt = lambda x: _signed(x * scale, d)
    text = fmt(diff["value"]) + (" pp" if kind == "rate" else "") + _interval(diff, fmt)
    mark = significance(diff, higher_is_better) if marker else ""
    return f"{text} {mark}" if mark else text


def format_seconds_per_sample(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_rate(per_second: float | None) -> str:
    if per_second is None:
        return MISSING
    return f"{per_second:.2f}" if per_second < 10 else f"{per_second:.1f}"


def format_memory(mb: float | None, kind: str) -> str:
    if mb is None:
        return MISSING
    size = f"{mb / 1024:.1f} GiB" if mb >= 1024 else f"{mb:.0f} MiB"
    return f"{size} ({kind.upper()})"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _opt(value: float | None, fmt: str) -> str:
    return MISSING if value is None else format(value, fmt)


def md_cell(text: str, limit: int | None = None) -> str:
    """One Markdown table cell: escape `|` and Markdown specials, newlines as <br>, cap length."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if limit is not None and len(text) > limit:
        text = text[:limit].rstrip() + "…"
    if not text.strip():
        return "*(empty)*"
    escaped = "".join("\\" + c if c in _MD_SPECIAL else c for c in text)
    return escaped.replace("\n", "<br>")


# --- the report's view of the results ---------------------------------------------------------

def ordered_metrics(names: Iterable[str], task_kind: str) -> list[str]:
    """Task metrics first (main metric leading), then the shared ones, then any others."""
    present = [n for n in names if n not in DATA_METRICS]
    preferred = TABLE_METRICS[task_kind] + COMMON_METRICS
    registry = list(METRICS)
    rest = sorted((n for n in present if n not in preferred),
                  key=lambda n: (registry.index(n) if n in registry else len(registry), n))
    return [n for n in preferred if n in present] + rest


class _View:
    """Formats one validated results dict; the template only lays the strings out."""

    def __init__(self, results: Mapping[str, Any]) -> None:
        self.r = results
        self.specs = results["metrics"]

    def stat(self, stat: Mapping[str, Any] | None, name: str, with_ci: bool = True) -> str:
        return format_stat(stat, name, self.specs[name]["kind"], with_ci) if name in self.specs else MISSING

    def diff(self, diff: Mapping[str, Any] | None, name: str, marker: bool = True) -> str:
        if name not in self.specs:
            return MISSING
        spec = self.specs[name]
        return format_diff(diff, name, spec["kind"], spec["higher_is_better"], marker)

    def summary(self, v: Mapping[str, Any]) -> str:
        parts = []
        for name in SUMMARY_METRICS[v["task_kind"]]:
            base, tuned = v["baseline"]["metrics"].get(name), v["tuned"]["metrics"].get(name)
            if base is None or tuned is None:
                continue
            diff = v["diff"].get(name)
            change = ""
            if diff is not None:
                mark = significance(diff, self.specs[name]["higher_is_better"])
                has_ci = diff.get("ci_low") is not None and diff.get("ci_high") is not None
                note = f" {mark}" if mark else (", no significant change" if has_ci else "")
                change = f" ({self.diff(diff, name, marker=False)}{note})"
            parts.append(f"{label(name)} {self.stat(base, name, False)} → "
                         f"{self.stat(tuned, name, False)}{change}")
        head = f"`{v['variant']}` ({v['task']}, {v['n_rows']} rows)"
        return f"{head}: " + "; ".join(parts) if parts else f"{head}: no shared metrics"

    def task_sections(self) -> list[dict[str, Any]]:
        tasks: dict[str, dict[str, Any]] = {}
        for v in self.r["variants"]:
            task = tasks.setdefault(v["task"], {"name": v["task"], "kind": v["task_kind"], "variants": []})
            names = ordered_metrics(set(v["baseline"]["metrics"]) | set(v["tuned"]["metrics"]),
                                    v["task_kind"])
            rows = [[label(n), self.stat(v["baseline"]["metrics"].get(n), n),
                     self.stat(v["tuned"]["metrics"].get(n), n), self.diff(v["diff"].get(n), n)]
                    for n in names]
            ref_words = v["baseline"]["metrics"].get("reference_words")
            note = f"; references average {ref_words['value']:.1f} words" if ref_words else ""
            task["variants"].append({
                "model": v["model"], "variant": v["variant"], "model_path": v["model_path"],
                "note": f"{v['n_rows']} rows of {', '.join(v['eval_datasets'])}{note}", "rows": rows,
            })
        return list(tasks.values())

    def quantitative_rows(self) -> list[list[str]]:
        rows = []
        for v in self.r["variants"]:
            main = MAIN_METRIC[v["task_kind"]]
            for system in ("baseline", "tuned"):
                m, t = v[system]["metrics"], v[system]["timing"]
                rows.append([
                    f"`{v['variant']}`", system,
                    *(self.stat(m.get(n), n) for n in ("output_words", "length_ratio", "exact_match",
                                                       "acceptable", "over_corrects", "verbose")),
                    f"{label(main)} {self.stat(m[main], main)}" if main in m else MISSING,
                    format_seconds_per_sample(t["seconds_per_sample"]),
                    format_rate(t["samples_per_second"]),
                    format_memory(t["peak_memory_mb"], t["memory_kind"]),
                ])
        return rows

    def sample_sections(self) -> list[dict[str, Any]]:
        sections: dict[str, list[list[str]]] = {}
        for s in self.r["samples"]:
            tags = (f"baseline: {', '.join(s['baseline_tags']) or 'none'}<br>"
                    f"tuned: {', '.join(s['tuned_tags']) or 'none'}")
            sections.setdefault(s["variant"], []).append([
                f"{s['row']} ({md_cell(s['id'])})",
                *(md_cell(s[key], CELL_LIMIT) for key in ("source", "reference", "baseline_output",
                                                          "tuned_output")),
                tags,
            ])
        order = [v["variant"] for v in self.r["variants"]]
        return [{"variant": name, "rows": sections[name]} for name in order if name in sections]

    def sweep_note(self, found: Verdict, section: SweepSection) -> str:
        stat = self.stat(next(r["stats"][found.metric] for r in section.rows if r["variant"] == found.best),
                         found.metric)
        if found.equal:
            return f"{label(found.metric)}: every variant scores {stat}; nothing to choose."
        if found.clear:
            return f"{label(found.metric)}: `{found.best}` is best ({stat}); its interval is clear of every other's."
        others = ("every other variant" if len(found.tied) == section.compared - 1
                  else ", ".join(f"`{name}`" for name in found.tied))
        return (f"{label(found.metric)}: no winner. The best point estimate, `{found.best}` ({stat}), is within "
                f"noise of {others} (intervals overlap).")

    def sweeps(self) -> list[dict[str, Any]]:
        sections = []
        for s in sweep_sections(self.r, TABLE_METRICS):
            rows = []
            for row in s.rows:
                marks = {m: (" ★" if v.clear else " ☆") for m, v in s.verdicts.items()
                         if v.best == row["variant"] and not v.equal}
                rows.append([f"`{row['variant']}`", *(md_cell(row["values"][k]) for k in s.keys),
                             *(self.stat(row["stats"][m], m) + marks.get(m, "") for m in s.metrics)])
            notes = [self.sweep_note(v, s) for v in s.verdicts.values()] or [
                "Only one variant of this sweep was compared: nothing to rank."]
            sections.append({"name": s.name, "base": s.base, "axes": s.axes_text, "rows": rows, "notes": notes,
                             "compared": f"{s.compared} of {s.grid_size}",
                             "header": ["Variant", *s.keys, *(label(m) for m in s.metrics)],
                             "align": "l" * (1 + len(s.keys)) + "r" * len(s.metrics)})
        return sections

    def training_rows(self) -> list[list[str]]:
        return [[f"`{t['variant']}`", t["state"], format_duration(t["train_seconds"]),
                 _opt(t["final_loss"], ".4f"), _opt(t["best_loss"], ".4f"), _opt(t["steps"], "d"),
                 format_rate(t["samples_per_second"]),
                 MISSING if t["adapter_bytes"] is None else f"{t['adapter_bytes'] / 2**20:.1f} MiB"]
                for t in self.r["training"]]

    def recipe_rows(self) -> list[list[str]]:
        def flat(prefix: str, value: Any) -> Iterable[tuple[str, Any]]:
            if isinstance(value, dict):
                for key in sorted(value):
                    yield from flat(f"{prefix}.{key}" if prefix else key, value[key])
            else:
                yield prefix, value
        return [[f"`{key}`", md_cell(value if isinstance(value, str) else yaml_scalar(value))]
                for key, value in flat("", self.r["recipe"])]

    def metric_rows(self) -> list[list[str]]:
        registry = list(METRICS)
        names = sorted(self.specs, key=lambda n: (registry.index(n) if n in registry else len(registry), n))
        return [[label(n), f"`{n}`", "yes" if self.specs[n]["higher_is_better"] else "no",
                 self.specs[n]["kind"], md_cell(self.specs[n]["description"])] for n in names]

    def context(self) -> dict[str, Any]:
        r = self.r
        return {
            "profile": r["profile"], "created_at": r["created_at"], "matrix": r["matrix"],
            "confidence": f"{r['confidence'] * 100:g}%",
            "summaries": [self.summary(v) for v in r["variants"]],
            "tasks": self.task_sections(), "sweeps": self.sweeps(), "quantitative": self.quantitative_rows(),
            "samples": self.sample_sections(), "training": self.training_rows(),
            "recipe": self.recipe_rows(), "metric_rows": self.metric_rows(), "cell_limit": CELL_LIMIT,
        }


def render_report(results: Mapping[str, Any]) -> str:
    """report.md's text for a validated results dict (no files touched)."""
    return render_template(TEMPLATE, **_View(results).context())


# --- files ------------------------------------------------------------------------------------

SAMPLE_COLUMNS = ("variant", "row", "id", "source", "reference", "baseline_output", "tuned_output",
                  "baseline_tags", "tuned_tags")


def samples_csv(samples: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SAMPLE_COLUMNS)
    for s in samples:
        writer.writerow([";".join(s[c]) if c.endswith("_tags") else s[c] for c in SAMPLE_COLUMNS])
    return out.getvalue()


def metric_panels(results: Mapping[str, Any]) -> list[Panel]:
    """Per task kind: the main metric and exact match, baseline vs tuned per variant (rates in %)."""
    specs = results["metrics"]
    panels = []
    for kind in TASK_KINDS:
        variants = [v for v in results["variants"] if v["task_kind"] == kind]
        for name in (MAIN_METRIC[kind], "exact_match"):
            shown = [v for v in variants if name in v["baseline"]["metrics"] and name in v["tuned"]["metrics"]]
            scale = 100.0 if specs.get(name, {}).get("kind") == "rate" else 1.0

            def bars(system: str) -> list[Bar]:
                stats = [v[system]["metrics"][name] for v in shown]
                return [Bar(s["value"] * scale, None if s["ci_low"] is None else s["ci_low"] * scale,
                            None if s["ci_high"] is None else s["ci_high"] * scale) for s in stats]

            panels.append(Panel(f"{kind}: {label(name)}" + (" (%)" if scale == 100.0 else ""),
                                [v["variant"] for v in shown], bars("baseline"), bars("tuned")))
    return panels


def write_report(results: dict[str, Any], out_dir: Path,
                 loss_curves: dict[str, list[tuple[int, float]]]) -> ReportFiles:
    """Validate ``results``, then write results.json, samples.csv, the plots and report.md."""
    validate_results(results)
    out_dir = Path(out_dir)
    files = ReportFiles(out_dir / "report.md", out_dir / "results.json", out_dir / "samples.csv", [])
    atomic_write(files.results_json, json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    atomic_write(files.samples_csv, samples_csv(results["samples"]))
    confidence = f"{results['confidence'] * 100:g}%"
    files.plots.append(plot_panels(metric_panels(results), out_dir / "metrics.png",
                                   f"Baseline vs tuned (error bars: {confidence} bootstrap intervals)"))
    files.plots.append(plot_loss_curves(loss_curves, out_dir / "loss_curves.png"))
    atomic_write(files.report_md, render_report(results))
    return files
