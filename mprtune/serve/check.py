"""`mprtune serve --check`: replay held-out prompts over HTTP, compare with `compare`'s predictions, time it.

Prompts are the eval rows `compare` predicted, in its order, with the user turn LLaMA-Factory builds
from an alpaca row (instruction, then input on a new line when present). Each answer is compared
with the stored prediction after the normalisation `compare` applies before scoring (strip). Latency
is measured by the client, per request, as production sees it: at concurrency 1, then K parallel
clients (LLaMA-Factory's HF engine generates one request at a time unless MAX_CONCURRENT is set, so
queueing shows up in the latency at K). Memory: peak RSS of the server's process tree sampled from
/proc (and the GPU memory of those processes when nvidia-smi is there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mprtune.errors import MprtuneError
from mprtune.evaluate.predictions import load_eval_rows, read_predictions
from mprtune.rows import chat_messages
from mprtune.serve.records import write_check
from mprtune.serve.server import RunningServer, ServeOptions, serving
from mprtune.serve.target import ServeTarget
from mprtune.workspace import Workspace

REQUEST_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class HeldOutPrompt:
    id: str
    content: str  # the user turn, as LLaMA-Factory builds it from the row
    stored: str  # compare's prediction for this row, stripped
    messages: list[dict[str, str]]  # what is sent: the user turn, with the row's own system and turns


@dataclass
class Reply:
    id: str
    text: str | None
    seconds: float
    completion_tokens: int
    finish_reason: str | None
    error: str | None = None


def held_out_prompts(ws: Workspace, target: ServeTarget) -> list[HeldOutPrompt]:
    """The rows `compare` predicted (same files, order and per-dataset limit) with its stored outputs.

    read_predictions proves each stored output belongs to its row, so eval data edited since
    `compare` is reported as such, never as a serving mismatch.
    """
    if not target.compared:
        command = f"mprtune compare {target.variant.name}"
        raise MprtuneError(
            f"{target.predict_folder}: no predictions from `compare` for {target.served_name}; "
            f"run `{command}` first (--check replays its prompts and compares the answers)"
        )
    rows = load_eval_rows(ws, target.variant, target.max_samples).rows
    stored = read_predictions(target.predict_folder, rows)
    return [
        HeldOutPrompt(row.id, row.prompt, prediction, chat_messages(row))
        for row, prediction in zip(rows, stored, strict=True)
    ]


# --- memory of the server's process tree ----------------------------------------------------------


def process_tree(root_pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _gpu_mb(pids: set[int]) -> float | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    used = [
        float(mb)
        for pid, mb in (line.split(",") for line in out.splitlines() if "," in line)
        if pid.strip().isdigit() and int(pid) in pids
    ]
    return sum(used) if used else None


class MemorySampler:
    """Peak memory of a process tree: summed RSS every `interval_s`, plus the leader's own high-water mark."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_rss_kb = 0
        self.peak_gpu_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._gpu = shutil.which("nvidia-smi") is not None
        self._last_gpu = 0.0

    def sample(self) -> None:
        tree = process_tree(self.pid)
        rss = sum(_status_kb(pid, "VmRSS") for pid in tree)
        self.peak_rss_kb = max(self.peak_rss_kb, rss, _status_kb(self.pid, "VmHWM"))
        if self._gpu and time.monotonic() - self._last_gpu > 1.0:
            self._last_gpu = time.monotonic()
            gpu = _gpu_mb(set(tree))
            if gpu is not None:
                self.peak_gpu_mb = max(self.peak_gpu_mb or 0.0, gpu)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# --- replay and statistics ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ask(client: Any, model: str, prompt: HeldOutPrompt, max_tokens: int) -> Reply:
    """One greedy chat completion: temperature 0 makes LLaMA-Factory set do_sample=False."""
    import openai

    started = time.perf_counter()
    try:
        reply = client.chat.completions.create(
            model=model, temperature=0, max_tokens=max_tokens, messages=prompt.messages
        )
    except openai.APIError as error:
        return Reply(prompt.id, None, time.perf_counter() - started, 0, None, f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - started
    choice = reply.choices[0]
    tokens = reply.usage.completion_tokens if reply.usage else 0
    return Reply(prompt.id, choice.message.content or "", seconds, tokens, choice.finish_reason)


def replay(
    client: Any, model: str, prompts: list[HeldOutPrompt], concurrency: int, max_tokens: int
) -> tuple[list[Reply], float]:
    """All prompts with `concurrency` clients in flight; replies in prompt order and the wall time."""
    started = time.perf_counter()
    if concurrency == 1:
        replies = [ask(client, model, p, max_tokens) for p in prompts]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            replies = list(pool.map(lambda p: ask(client, model, p, max_tokens), prompts))
    return replies, time.perf_counter() - started


def latency_stats(replies: list[Reply], wall_s: float, concurrency: int) -> dict[str, Any]:
    ok = [r for r in replies if r.error is None]
    seconds = [r.seconds for r in ok]
    tokens = sum(r.completion_tokens for r in ok)
    return {
        "concurrency": concurrency,
        "requests": len(replies),
        "errors": len(replies) - len(ok),
        "p50_s": percentile(seconds, 0.5),
        "p95_s": percentile(seconds, 0.95),
        "mean_s": sum(seconds) / len(seconds) if seconds else None,
        "wall_s": wall_s,
        "output_tokens": tokens,
        "tokens_per_second": tokens / wall_s if wall_s > 0 else None,
        "requests_per_second": len(ok) / wall_s if wall_s > 0 else None,
    }


def parity(prompts: list[HeldOutPrompt], replies: list[Reply]) -> dict[str, Any]:
    """Exact match of served vs stored text after compare's normalisation (strip)."""
    mismatches = [
        {
            "id": p.id,
            "prompt": p.content,
            "stored": p.stored,
            "served": r.text.strip() if r.text is not None else None,
            "error": r.error,
        }
        for p, r in zip(prompts, replies, strict=False)
        if r.text is None or r.text.strip() != p.stored
    ]
    matches = len(prompts) - len(mismatches)
    return {
        "rows": len(prompts),
        "matches": matches,
        "rate": matches / len(prompts) if prompts else None,
        "normalisation": "strip() of both texts, as compare scores predictions",
        "mismatches": mismatches,
    }


def run_check(
    ws: Workspace,
    target: ServeTarget,
    options: ServeOptions,
    rows: int | None,
    concurrency: int,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Start the server, replay `rows` held-out prompts at concurrency 1 and K, stop it; the result dict."""
    from openai import OpenAI

    prompts = held_out_prompts(ws, target)
    if rows is not None:
        prompts = prompts[:rows]
    if not prompts:
        raise MprtuneError(f"{target.predict_folder}: no held-out rows to replay")
    levels = [1] + ([concurrency] if concurrency > 1 else [])
    say(f"starting the server for {target.served_name} ({target.system}) ...")
    with serving(target, options) as server, MemorySampler(server.pid) as memory:
        say(
            f"ready in {server.start_seconds:.1f} s at {server.base_url}; replaying {len(prompts)} prompts "
            f"at concurrency {' and '.join(map(str, levels))}"
        )
        client = OpenAI(
            base_url=server.base_url, api_key=options.api_key or "unused", max_retries=0, timeout=REQUEST_TIMEOUT_S
        )
        # The first request pays one-off costs (lazy init, allocator warm-up); timed separately.
        first_request = ask(client, target.served_name, prompts[0], target.max_new_tokens)
        runs = {level: replay(client, target.served_name, prompts, level, target.max_new_tokens) for level in levels}
        client.close()
    first, _ = runs[1]
    loaded = runs[levels[-1]][0]
    return {
        "schema_version": 1,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "profile": ws.profile,
        "variant": target.variant.name,
        "system": target.system,
        "served_name": target.served_name,
        "settings": {k: v for k, v in target.settings.items()},
        "settings_source": target.settings_source,
        "predictions": str(target.predict_folder / "generated_predictions.jsonl"),
        "server": {**server_summary(server, memory), "first_request_seconds": first_request.seconds},
        "parity": parity(prompts, first),
        "same_answers_under_load": sum(a.text == b.text for a, b in zip(first, loaded, strict=False)),
        "latency": [latency_stats(replies, wall, level) for level, (replies, wall) in runs.items()],
        "replies": [asdict(r) for r in first],
    }


def server_summary(server: RunningServer, memory: MemorySampler) -> dict[str, Any]:
    on_gpu = memory.peak_gpu_mb is not None
    return {
        "start_seconds": server.start_seconds,
        "engine": server.target.settings.get("infer_backend"),
        "max_concurrent": int(os.environ.get("MAX_CONCURRENT", "1")),
        "peak_memory_mb": memory.peak_gpu_mb if on_gpu else memory.peak_rss_kb / 1024,
        "memory_kind": "gpu" if on_gpu else "rss",
        "peak_rss_mb": memory.peak_rss_kb / 1024,
    }


# --- where results go -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    result: dict[str, Any]
    written: list[Path]
    card: Path | None

    @property
    def passed(self) -> bool:
        parity_ok = self.result["parity"]["matches"] == self.result["parity"]["rows"]
        return parity_ok and not any(level["errors"] for level in self.result["latency"])


def check_and_record(
    ws: Workspace,
    target: ServeTarget,
    reports: Path,
    options: ServeOptions,
    rows: int | None,
    concurrency: int,
    say: Callable[[str], None] = lambda line: None,
) -> CheckOutcome:
    """run_check, then its JSON + Markdown (run folder, latest report) and the variant's model card."""
    from mprtune.serve.card import write_model_card

    result = run_check(ws, target, options, rows, concurrency, say)
    written = write_check(result, target, reports)
    card = None if target.base else write_model_card(ws, target.variant.name, ws.run_dir(target.variant.name), reports)
    return CheckOutcome(result, written, card)
