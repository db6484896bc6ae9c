#!/usr/bin/env python3
"""Benchmark 5: `mprtune prepare-data` on a large synthetic QQP dump: rows/s and peak memory.

The benchmark writes QQP-shaped TSVs in the Quora layout that prepare-data reads
(`<source>/qqp/quora_duplicate_questions.tsv`: id, qid1, qid2, question1, question2, is_duplicate;
~37 % duplicates, some questions repeated across pairs, a few CSV-quoted fields with quotes or a
newline inside; ids ending in 0 are the held-out eval rows) with 400k and 100k rows (20k and 5k
with --smoke) plus a 1k-row one for the fixed cost, and prepares task `qqp_only` of mprtune.yaml
(reference profile) from each, in a subprocess: `mprtune prepare-data` when the CLI has the
command, else the public API `mprtune.data.prepare_data` in `python -c`. Peak RSS is that
child's ru_maxrss (wait4, the per-child value behind getrusage(RUSAGE_CHILDREN)).

Reported: rows/s, seconds for 400k rows (target from the issue: < 60 s, an absolute target:
`target_met: false` when missed, exit status still 0), peak RSS of each size and
rss_400k/rss_100k (~1.0 when memory does not grow with the input).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TARGET_S = 60.0
TASK = "qqp_only"
API = (
    "import sys\n"
    "from pathlib import Path\n"
    "from mprtune.config.matrix import load_matrix\n"
    "from mprtune.data import prepare_data\n"
    "matrix = load_matrix(Path(sys.argv[1]))\n"
    "report = prepare_data(matrix, [sys.argv[2]], sys.argv[3], Path(sys.argv[4]))\n"
    "print({f.file: f.rows for f in report.files})\n"
)

_WH = [
    "How can I",
    "What is the best way to",
    "How do I",
    "Why should I",
    "Is it possible to",
    "Where can I",
    "What are good ways to",
    "How long does it take to",
    "Can anyone",
    "When should I",
]
_VERBS = [
    "learn",
    "improve",
    "start",
    "stop",
    "find",
    "build",
    "choose",
    "understand",
    "prepare for",
    "avoid",
    "fix",
    "explain",
    "compare",
    "sell",
    "buy",
    "clean",
    "teach",
    "measure",
    "write",
    "speak",
]
_OBJECTS = [
    "Python",
    "my English",
    "a startup",
    "weight loss",
    "a used car",
    "machine learning",
    "the GRE",
    "my credit score",
    "a good laptop",
    "public speaking",
    "a novel",
    "Spanish",
    "my sleep",
    "stock investing",
    "a website",
    "the guitar",
    "a job interview",
    "Quora answers",
    "a resume",
    "photography",
    "chess",
    "calculus",
    "a small garden",
    "cold emails",
    "my first marathon",
]
_TAILS = [
    "",
    "",
    "",
    " quickly",
    " at home",
    " for free",
    " in 2017",
    " as a beginner",
    " without a degree",
    " on a budget",
    " in India",
    " after 30",
    " with no experience",
    " in six months",
]
_PARAPHRASE = {
    "How can I": "What is the best way to",
    "What is the best way to": "How can I",
    "How do I": "What should I do to",
    "Why should I": "What are the reasons to",
    "Is it possible to": "Can I",
    "Where can I": "Which place is best to",
    "What are good ways to": "How should I",
    "How long does it take to": "How much time is needed to",
    "Can anyone": "Could someone",
    "When should I": "At what point should I",
}


def write_quora(path: Path, n: int, seed: int = 0) -> None:
    """n pairs in the Quora dump layout (header + one line per pair, some CSV-quoted fields)."""
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    recent: list[tuple[int, str]] = []
    qid = 0

    def question() -> tuple[int, str, str, str, str]:
        wh, verb, obj, tail = rnd.choice(_WH), rnd.choice(_VERBS), rnd.choice(_OBJECTS), rnd.choice(_TAILS)
        extra = f" (case {rnd.randrange(10**6)})" if rnd.random() < 0.5 else ""
        return wh, verb, obj, tail, extra

    def render(wh: str, verb: str, obj: str, tail: str, extra: str) -> str:
        return f"{wh} {verb} {obj}{tail}{extra}?"

    def field(text: str) -> str:
        r = rnd.random()
        if r < 0.02:  # a quoted field with quotes inside, as in the dump
            return '"' + text.replace("?", ' ""really""?') + '"'
        if r < 0.0205:  # a quoted field holding a newline
            return '"' + text.replace(" ", "\n", 1) + '"'
        return text

    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n")
        for i in range(n):
            if recent and rnd.random() < 0.15:  # a question asked again in another pair
                qid1, q1 = rnd.choice(recent)
                parts = None
            else:
                qid += 1
                parts = question()
                qid1, q1 = qid, render(*parts)
                recent.append((qid1, q1))
                if len(recent) > 5000:
                    recent.pop(rnd.randrange(len(recent)))
            duplicate = rnd.random() < 0.37
            qid += 1
            if duplicate and parts is not None:
                wh, verb, obj, tail, extra = parts
                q2 = render(_PARAPHRASE[wh], verb, obj, tail, extra)
            elif duplicate:
                q2 = q1.replace("?", " exactly?")
            else:
                q2 = render(*question())
            out.write(f"{i}\t{qid1}\t{qid}\t{field(q1)}\t{field(q2)}\t{int(duplicate)}\n")


def cli_available() -> bool:
    proc = subprocess.run([str(c.VENV_BIN / "mprtune"), "prepare-data", "--help"], capture_output=True, cwd=c.ROOT)
    return proc.returncode == 0


def prepare(source: Path, out: Path, logfile: Path, use_cli: bool) -> tuple[float, int, dict[str, int]]:
    matrix = str(c.ROOT / "mprtune.yaml")
    if use_cli:
        cmd = [
            str(c.VENV_BIN / "mprtune"),
            "prepare-data",
            TASK,
            "--config",
            matrix,
            "--source",
            str(source),
            "--out",
            str(out),
        ]
    else:
        cmd = [sys.executable, "-c", API, matrix, TASK, str(source), str(out)]
    code, wall, rss = c.run_measured(cmd, c.ROOT, logfile)
    if code != 0:
        raise RuntimeError(f"prepare-data exited {code}:\n{c.log_tail(logfile)}")
    rows = {p.name: sum(1 for _ in p.open(encoding="utf-8")) for p in sorted(out.glob("*.jsonl"))}
    return wall, rss, rows


def main() -> int:
    args = c.parse_args(__doc__.splitlines()[1])
    big, small = (20_000, 5_000) if args.smoke else (400_000, 100_000)
    sizes = {"1k": 1_000, "small": small, "big": big}
    use_cli = cli_available()
    how = "mprtune prepare-data (CLI)" if use_cli else "mprtune.data.prepare_data (API, python -c)"
    results = {}
    with c.Workdir("prepare", args.keep) as work:
        for key, n in sizes.items():
            source = work / f"src-{key}"
            c.log(f"writing {n} QQP rows ...")
            write_quora(source / "qqp" / "quora_duplicate_questions.tsv", n, seed=n)
            c.log(f"preparing {n} rows with {how} ...")
            wall, rss, rows = prepare(source, work / f"out-{key}", work / f"prepare-{key}.log", use_cli)
            c.log(f"  {n} rows: {wall:.1f} s, {n / wall:.0f} rows/s, peak RSS {rss / 2**20:.0f} MiB, wrote {rows}")
            results[key] = {"n": n, "wall": wall, "rss": rss, "rows": rows}
            shutil.rmtree(source)  # disk: keep one input at a time

    b, s, k = results["big"], results["small"], results["1k"]
    label_b, label_s = ("20k", "5k") if args.smoke else ("400k", "100k")
    per_100k = (b["rss"] - s["rss"]) / ((b["n"] - s["n"]) / 100_000) / 2**20
    c.emit(
        [
            ("runner", how),
            (f"rows_{label_b}", b["n"]),
            (f"output_rows_{label_b}", " ".join(f"{name}={n}" for name, n in b["rows"].items())),
            (f"rows_per_s_{label_b}", b["n"] / b["wall"]),
            (f"rows_per_s_{label_s}", s["n"] / s["wall"]),
            (f"seconds_{label_b}", f"{b['wall']:.1f} (target < {TARGET_S:.0f} s for 400k rows)"),
            (f"seconds_{label_b}/seconds_{label_s}", c.ratio(b["wall"], s["wall"])),
            ("peak_rss_mib_1k", k["rss"] / 2**20),
            (f"peak_rss_mib_{label_s}", s["rss"] / 2**20),
            (f"peak_rss_mib_{label_b}", b["rss"] / 2**20),
            (f"rss_{label_b}/rss_{label_s}", c.ratio(b["rss"], s["rss"])),
            ("rss_growth_mib_per_100k_rows", per_100k),
            ("target_met", "skipped (--smoke)" if args.smoke else b["wall"] < TARGET_S),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
