"""Shared plumbing of the bench scripts (not a benchmark itself).

Conventions every script follows:
- results go to STDOUT, and only results: one `metric: value` line each, printed last;
- progress, logs and diagnostics go to STDERR;
- `--smoke` is a tiny, fast mode (CI: does the script still run end to end?);
- exit status 0 on success, 1 on failure (a missed target is a result, not a failure,
  unless the script says otherwise).
Numbers are RATIOS of things measured in the same run (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


_RESULTS = sys.stdout  # where emit() writes; see keep_stdout_for_results()


def keep_stdout_for_results() -> None:
    """From here on, anything written to fd 1 (library banners, warnings of imported packages,
    children) lands on stderr; only emit() writes to the real stdout."""
    global _RESULTS
    if _RESULTS is not sys.stdout:
        return
    sys.stdout.flush()
    _RESULTS = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny, fast mode: checks the script runs end to end")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder (path on stderr)")
    args = parser.parse_args()
    keep_stdout_for_results()
    return args


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def emit(results: list[tuple[str, Any]]) -> None:
    """The result block: `metric: value` lines on stdout, nothing after them."""
    for name, value in results:
        print(f"{name}: {fmt(value)}", file=_RESULTS)
    _RESULTS.flush()


def target(metric: str, value: float, op: str, limit: float) -> tuple[str, str]:
    """`<metric> target: <= 1.05 met` (the result line of a target from the issue)."""
    met = (
        value <= limit
        if op == "<="
        else value < limit
        if op == "<"
        else value >= limit
        if op == ">="
        else value > limit
    )
    return f"{metric} target", f"{op} {fmt(limit)} {'met' if met else 'MISSED'}"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


class Workdir:
    """A temporary folder, removed at exit unless --keep; a reused folder (--resume) is always kept."""

    def __init__(self, prefix: str, keep: bool, reuse: Path | None = None) -> None:
        self.path = reuse.resolve() if reuse else Path(tempfile.mkdtemp(prefix=f"mprtune-bench-{prefix}-"))
        self.keep = keep or reuse is not None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: Any) -> None:
        if self.keep:
            log(f"work folder kept: {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "ram": ram, "cpu": cpu}


# ---------------------------------------------------------------- LLaMA-Factory on the tiny model


def lf_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DISABLE_VERSION_CHECK": "1",
            "WANDB_MODE": "disabled",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "TOKENIZERS_PARALLELISM": "false",
            # One compute thread: on a shared 2-core box a 2-thread torch run slows down 3-4x whenever anything
            # else runs (its threads wait for each other); one thread keeps the ratios between runs stable.
            "OMP_NUM_THREADS": os.environ.get("BENCH_THREADS", "1"),
            "MKL_NUM_THREADS": os.environ.get("BENCH_THREADS", "1"),
        }
    )
    return env


ALPACA_INFO = {"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input", "response": "output"}}


def write_dataset_dir(cwd: Path, files: dict[str, Path]) -> Path:
    """cwd/data/ with the given JSONL files and a dataset_info.json naming them."""
    data = cwd / "data"
    data.mkdir(parents=True, exist_ok=True)
    info = {}
    for name, source in files.items():
        target = data / f"{name}.jsonl"
        if source.resolve() != target.resolve():
            target.write_bytes(source.read_bytes())
        info[name] = {"file_name": target.name, **ALPACA_INFO}
    (data / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return data


def run_measured(
    cmd: list[str], cwd: Path, logfile: Path, env: dict[str, str] | None = None, timeout: float = 3600
) -> tuple[int, float, int]:
    """Run cmd (stdout+stderr to logfile); (returncode, wall seconds, peak RSS in bytes of that child).

    The peak RSS comes from wait4() on this very child, i.e. what getrusage(RUSAGE_CHILDREN) reports
    for it, without the maximum over earlier children that RUSAGE_CHILDREN would mix in.
    """
    start = time.perf_counter()
    with logfile.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss * 1024


def log_tail(logfile: Path, lines: int = 40) -> str:
    return "\n".join(logfile.read_text(errors="replace").splitlines()[-lines:])


def run_lf(cwd: Path, config: dict[str, Any], name: str, timeout: float = 3600) -> tuple[float, int]:
    """`llamafactory-cli train <name>.yaml` in cwd; (wall seconds, peak RSS bytes). Raises with the log tail."""
    import yaml

    cfg = cwd / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    logfile = cwd / f"{name}.log"
    code, wall, rss = run_measured(
        [str(VENV_BIN / "llamafactory-cli"), "train", str(cfg)], cwd, logfile, lf_env(), timeout
    )
    if code != 0:
        raise RuntimeError(f"llamafactory-cli train {cfg.name} exited {code}:\n{log_tail(logfile)}")
    return wall, rss


def build_tiny(out_dir: Path, corpus: list[Path], seed: int = 1) -> Path:
    from mprtune.models.tiny import TinyLlamaSpec, build_tiny_llama

    return build_tiny_llama(out_dir, TinyLlamaSpec(seed=seed), corpus)


# ---------------------------------------------------------------- grammar-like data

_SUBJECTS = [
    "She",
    "He",
    "My brother",
    "The teacher",
    "Our neighbours",
    "I",
    "They",
    "The students",
    "My friend",
    "The company",
    "People in my city",
    "Everyone in the class",
]
_VERBS = [
    ("go", "goes", "went"),
    ("have", "has", "had"),
    ("want", "wants", "wanted"),
    ("like", "likes", "liked"),
    ("study", "studies", "studied"),
    ("visit", "visits", "visited"),
    ("think", "thinks", "thought"),
    ("buy", "buys", "bought"),
    ("write", "writes", "wrote"),
]
_OBJECTS = [
    "to school every day by bus",
    "a lot of homework this week",
    "the museum with their family",
    "English because it is useful for the future",
    "a new computer for the office",
    "about the environment and the pollution of the rivers",
    "many friends from other countries",
    "the letter to the manager before the meeting",
    "in a small house near the station",
]
_TAILS = [
    "",
    "",
    " , but it was very expensive",
    " because the weather was bad",
    " and I think it is a good idea for everyone",
    " when I was a child",
    " , which is important for our society in many different ways",
]


def grammar_rows(n: int, seed: int = 0, prompt: str = "Fix: ") -> list[dict[str, str]]:
    """JFLEG-like rows: a sentence with one agreement/tense error -> the corrected sentence."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        subject = rnd.choice(_SUBJECTS)
        base, third, past = rnd.choice(_VERBS)
        obj, tail = rnd.choice(_OBJECTS), rnd.choice(_TAILS)
        singular = subject in (
            "She",
            "He",
            "My brother",
            "The teacher",
            "My friend",
            "The company",
            "Everyone in the class",
        )
        right = third if singular else base
        wrong = base if singular else third
        if rnd.random() < 0.3:
            right, wrong = past, rnd.choice([base, third])
        source = f"{subject} {wrong} {obj}{tail} ."
        target = f"{subject} {right} {obj}{tail} ."
        rows.append({"id": f"synthetic-{i:06d}", "instruction": prompt + source, "input": "", "output": target})
    return rows


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def grammar_data(path: Path, min_rows: int, sample: Path, seed: int = 0) -> tuple[Path, str]:
    """`min_rows` grammar rows at path: the bundled sample (repeated) when present, else synthetic ones.

    Repeating the sample keeps its length distribution, which is all a throughput benchmark needs.
    """
    if sample.is_file():
        rows = [r for r in read_jsonl(sample) if r.get("instruction") and r.get("output")]
        if rows:
            out = []
            while len(out) < min_rows:
                for row in rows:
                    out.append(
                        {"instruction": row["instruction"], "input": row.get("input", ""), "output": row["output"]}
                    )
            random.Random(seed).shuffle(out)
            shown = sample.relative_to(ROOT) if sample.is_relative_to(ROOT) else sample
            return write_jsonl(path, out[:min_rows]), f"{shown} (x{min_rows / len(rows):.0f})"
    return write_jsonl(path, grammar_rows(min_rows, seed)), "synthetic grammar rows"


def llama3_token_counts(model_dir: Path, rows: list[dict[str, Any]], prompt_only: bool = False) -> list[int]:
    """Tokens of each row as LLaMA-Factory's llama3 template encodes it (prompt + answer, or the prompt)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    user = "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    counts = []
    for row in rows:
        query = row["instruction"] + (("\n" + row["input"]) if row.get("input") else "")
        prompt = tok.encode(user.format(query), add_special_tokens=False)
        answer = [] if prompt_only else tok.encode(row["output"] + "<|eot_id|>", add_special_tokens=False)
        counts.append(1 + len(prompt) + len(answer))
    return counts
