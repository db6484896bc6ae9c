"""The LPT plan and the work queue (real subprocesses, no LLaMA-Factory: fast)."""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.launch.backends.local import LocalExecutor
from mprtune.launch.jobs import JobSpec, JobStatus
from mprtune.launch.planner import Estimate, lpt_schedule
from mprtune.launch.queue import run_queue

ROOT = Path(__file__).resolve().parents[1]


def test_plan_of_the_reference_grid_is_within_the_lpt_bound_on_two_gpus(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--config", str(ROOT / "mprtune.yaml"), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("makespan"))
    ratio = float(line.rsplit("ratio", 1)[1])
    assert 1.0 <= ratio <= 7 / 6
    slots = {
        line.split()[1]
        for line in result.output.splitlines()
        if line.endswith("_lora") is False and "_lora " in line and line.split()[1] in ("0", "1")
    }
    assert slots == {"0", "1"}
    assert "CUDA_VISIBLE_DEVICES=0" in result.output and "CUDA_VISIBLE_DEVICES=1" in result.output
    assert "llamafactory-cli train" in result.output and "WANDB_RUN_GROUP=grammar" in result.output


def optimal_two_slot_makespan(durations: list[float]) -> float:
    total = sum(durations)
    best = total
    for mask in range(1 << len(durations)):
        load = sum(d for i, d in enumerate(durations) if mask >> i & 1)
        best = min(best, max(load, total - load))
    return best


def test_lpt_is_within_seven_sixths_of_optimal_for_random_jobs_on_two_slots() -> None:
    rng = random.Random(0)
    for _ in range(300):
        jobs = [Estimate(f"v{i}", rng.uniform(1, 100), 0, "matrix") for i in range(rng.randint(1, 10))]
        schedule = lpt_schedule(jobs, ["0", "1"])
        optimum = optimal_two_slot_makespan([j.seconds for j in jobs])
        assert schedule.lower_bound_s - 1e-9 <= optimum <= schedule.makespan_s + 1e-9
        assert schedule.makespan_s <= 7 / 6 * optimum + 1e-9


def sleeper(tmp_path: Path, name: str, seconds: float, exit_code: int = 0, until: Path | None = None) -> JobSpec:
    """A job that sleeps `seconds` (or, with `until`, until that file exists, at most 60 s), then finishes."""
    wait = (
        f"d=time.time()+60\nwhile not pathlib.Path({str(until)!r}).exists() and time.time()<d: time.sleep(0.01)\n"
        if until
        else f"time.sleep({seconds})\n"
    )
    script = (
        f"import time,pathlib,os\n{wait}"
        f"p=pathlib.Path({str(tmp_path / name)!r}); p.mkdir(exist_ok=True); "
        f"(p/'train_results.json').write_text('{{}}') if {exit_code}==0 else None; "
        f"(p/'adapter_model.safetensors').write_text('x') if {exit_code}==0 else None; "
        f"print('slot', os.environ['CUDA_VISIBLE_DEVICES']); raise SystemExit({exit_code})"
    )
    return JobSpec(name, "train", tmp_path / name, (sys.executable, "-c", script), {}, tmp_path, "x: 1\n", seconds)


def test_the_next_job_starts_as_soon_as_a_slot_frees(tmp_path: Path) -> None:
    # "long" runs until short3 has finished: only a queue that refills the other slot at once gets there.
    specs = [
        sleeper(tmp_path, "long", 1.5, until=tmp_path / "short3" / "adapter_model.safetensors"),
        sleeper(tmp_path, "short1", 0.3),
        sleeper(tmp_path, "short2", 0.3),
        sleeper(tmp_path, "short3", 0.3),
    ]
    final = run_queue(specs, LocalExecutor(gpus=[0, 1]))
    assert {s.state for s in final.values()} == {"done"}
    windows = {name: status.windows[-1] for name, status in final.items()}
    # The short jobs run back to back on the other GPU while "long" still runs ("long" ends only
    # after short3 has written its outputs, so the two reaps race: compare short3's START).
    assert windows["short3"][0] < windows["long"][1]
    assert windows["short2"][0] - windows["short1"][1] < 0.5
    slots = {name: JobStatus.read(tmp_path / name / "mprtune-status.json").slot for name in final}
    assert slots["long"] == "0" and {slots["short1"], slots["short2"], slots["short3"]} == {"1"}
    assert "slot 1" in (tmp_path / "short2" / "stdout.log").read_text()


def test_failures_are_retried_then_marked_failed_without_stopping_others(tmp_path: Path) -> None:
    specs = [sleeper(tmp_path, "bad", 0.1, exit_code=3), sleeper(tmp_path, "good", 0.5)]
    events = []
    final = run_queue(specs, LocalExecutor(cpu_slots=2), retries=2, on_event=events.append)
    assert final["good"].state == "done"
    assert final["bad"].state == "failed" and final["bad"].attempt == 3 and final["bad"].reason == "exit code 3"
    assert [e.kind for e in events if e.name == "bad"] == [
        "started",
        "retrying",
        "started",
        "retrying",
        "started",
        "failed",
    ]


def test_a_stop_request_cancels_running_jobs_as_interrupted(tmp_path: Path) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    final = run_queue(
        [sleeper(tmp_path, "slow", 30), sleeper(tmp_path, "next", 30)], LocalExecutor(cpu_slots=1), stop=stop
    )
    assert final["slow"].state == "interrupted" and final["slow"].windows[-1][1] - final["slow"].windows[-1][0] < 15
    assert final["next"].state == "pending"


def test_the_local_executor_wakes_the_queue_when_a_job_exits_not_at_the_timeout(tmp_path: Path) -> None:
    # The queue's wait returns on the exit itself: with a 120 s timeout, a wait that only sleeps would
    # still be asleep long after the quick job ended (the margin is huge: this is no timing claim).
    executor = LocalExecutor(cpu_slots=2)
    quick = executor.submit(sleeper(tmp_path, "quick", 0.2), "cpu0")
    slow = executor.submit(sleeper(tmp_path, "slow", 300), "cpu1")
    try:
        assert quick.exit_fd is not None, "no pidfd on this kernel"
        started = time.monotonic()
        executor.wait([quick, slow], 120)
        assert time.monotonic() - started < 60
        assert quick.poll() == 0 and quick.exit_fd is None
        assert slow.poll() is None
    finally:
        slow.cancel()
    assert slow.exit_fd is None
