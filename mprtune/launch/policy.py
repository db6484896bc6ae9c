"""Which waiting jobs start now: list scheduling over slots, with a reservation for a blocked wide job.

A job holds `width` slots at once (GPUs, or CPU slots). The policy (EASY backfilling, what Slurm's
backfill scheduler does):

1. Jobs are taken in queue order (longest first); each starts as soon as enough slots are free.
2. The first job that does not fit (with free slots left, only a wide one can be blocked) gets a
   reservation: the earliest time enough slots are free, from the running jobs' expected ends
   (start + estimate; a job running past its estimate is expected to overrun as much again).
3. A later job starts now only if it fits and does not delay that reservation: it is expected to
   end by the reservation time, or it only takes slots the reserved job will not need then. A job
   without an estimate (0) only takes such spare slots.

So one-slot jobs fill the gaps around a wide job but never keep it waiting past its reservation:
no starvation. With estimates that are too short, a job started beside an overdue one is at most
as long as that job's overrun so far, so the wide job waits at most about twice the overrun of the
jobs it waits for (and a job without an estimate never jumps the queue).

The work queue calls `pick` with real time; the planner runs `simulate` over estimates, so the plan
shows what the queue does when the estimates are right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Waiting:
    name: str
    width: int
    estimate_s: float


@dataclass(frozen=True)
class Busy:
    slots: tuple[str, ...]
    started: float
    estimate_s: float

    def expected_end(self, now: float) -> float:
        """start + estimate; past that, now + the overrun so far (it may take as long again)."""
        end = self.started + self.estimate_s
        return end if end >= now else now + (now - end)


@dataclass(frozen=True)
class Run:
    """One job of a simulated schedule."""

    name: str
    slots: tuple[str, ...]
    start_s: float
    end_s: float


def _reservation(width: int, free_now: int, busy: list[Busy], now: float) -> tuple[float, int]:
    """(when the blocked job can start if nothing else starts, slots free then beyond its width)."""
    free, when = free_now, now
    for end, count in sorted((job.expected_end(now), len(job.slots)) for job in busy):
        if free >= width and end > when:
            break
        when, free = end, free + count
    if free < width:  # wider than every slot together: nothing ends "before" it
        return float("inf"), 0
    return when, free - width


def pick(waiting: list[Waiting], free: list[str], busy: list[Busy], now: float) -> list[tuple[int, tuple[str, ...]]]:
    """(index into `waiting`, slots) of every job to start now, in start order.

    `free` lists the free slots in preference order (a job takes the first ones); `busy` the running
    jobs. A job wider than every slot together never starts here: callers refuse it up front.
    """
    free, running = list(free), list(busy)
    chosen: list[tuple[int, tuple[str, ...]]] = []
    reserved_at: float | None = None
    spare = 0
    for index, job in enumerate(waiting):
        if job.width > len(free):
            if reserved_at is None:
                reserved_at, spare = _reservation(job.width, len(free), running, now)
            continue
        if reserved_at is not None:
            ends_first = job.estimate_s > 0 and now + job.estimate_s <= reserved_at
            if not ends_first:
                if job.width > spare:
                    continue
                spare -= job.width
        slots, free = tuple(free[: job.width]), free[job.width :]
        running.append(Busy(slots, now, job.estimate_s))
        chosen.append((index, slots))
    return chosen


def simulate(jobs: list[Waiting], slots: list[str]) -> list[Run]:
    """The schedule `pick` produces when every job takes exactly its estimate (jobs in queue order)."""
    too_wide = [job.name for job in jobs if job.width > len(slots)]
    if too_wide:
        raise ValueError(f"wider than the {len(slots)} slots: {', '.join(too_wide)}")
    waiting, now = list(jobs), 0.0
    runs: list[Any] = []
    running: list[Any] = []
    while waiting:
        busy = {slot for run in running for slot in run.slots}
        started = pick(
            waiting,
            [s for s in slots if s not in busy],
            [Busy(run.slots, run.start_s, run.end_s - run.start_s) for run in running],
            now,
        )
        for index, taken in started:
            job = waiting[index]
            run = Run(job.name, taken, now, now + job.estimate_s)
            runs.append(run)
            running.append(run)
        for index, _ in reversed(started):
            del waiting[index]
        if waiting:  # jump to the next moment a job ends
            now = min(run.end_s for run in running)
            running = [run for run in running if run.end_s > now]
    return runs
