"""The work queue: keep every slot busy, retry failures (resuming), stop cleanly on a signal.

The next job starts the moment a slot frees (no "launch two, wait for both"). With a cluster
executor (`slots() is None`) every job is submitted at once and the cluster queues them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from mprtune.jobs import (CANCELLED, DONE, FAILED, INTERRUPTED, RUNNING, Executor, JobHandle, JobSpec,
                          JobStatus, now)
from mprtune.runstate import classify_failure, config_digest, is_complete

POLL_S = 0.01


@dataclass(frozen=True)
class Event:
    kind: str  # started | finished | retrying | failed | interrupted
    name: str
    slot: str | None
    message: str = ""


def _status_for(spec: JobSpec) -> JobStatus:
    return JobStatus.read(spec.paths.status) or JobStatus(spec.name, spec.kind)


def run_queue(specs: list[JobSpec], executor: Executor, retries: int = 0,
              respec: Callable[[JobSpec], JobSpec] | None = None,
              on_event: Callable[[Event], None] = lambda event: None,
              stop: threading.Event | None = None) -> dict[str, JobStatus]:
    """Run specs in the given order over the executor's slots; returns the final status per job."""
    stop = stop or threading.Event()
    slots = executor.slots()
    queue = list(specs)
    running: dict[str, tuple[JobHandle, JobStatus]] = {}
    final: dict[str, JobStatus] = {}

    def launch(spec: JobSpec, slot: str | None) -> None:
        status = _status_for(spec)
        spec.paths.folder.mkdir(parents=True, exist_ok=True)
        spec.paths.config.write_text(spec.config_text)
        handle = executor.submit(spec, slot)
        status.state, status.slot, status.backend = RUNNING, handle.slot, executor.name
        status.attempt += 1
        status.started_at, status.finished_at, status.returncode = now(), None, None
        status.reason = status.log_tail = None
        status.pid = int(handle.job_id) if executor.name == "local" else None
        status.job_id = handle.job_id
        status.config_sha256 = config_digest(spec.config_text)
        status.windows.append([status.started_at, None])
        status.write(spec.paths.status)
        running[spec.name] = (handle, status)
        on_event(Event("started", spec.name, handle.slot, f"attempt {status.attempt}"))

    def free_slots() -> list[str | None]:
        if slots is None:
            return [None] * len(queue)
        busy = {handle.slot for handle, _ in running.values()}
        return [slot for slot in slots if slot not in busy]

    def reap() -> bool:
        """Handle every job that ended; True if any did (its slot is free now)."""
        ended = False
        for name, (handle, status) in list(running.items()):
            code = handle.poll()
            if code is None:
                continue
            ended = True
            del running[name]
            spec = handle.spec
            on_disk = JobStatus.read(spec.paths.status)
            if on_disk is not None and on_disk.state == CANCELLED:  # `mprtune cancel`: no retry
                final[name] = on_disk
                on_event(Event("cancelled", name, handle.slot))
                continue
            status.finished_at = now()
            status.windows[-1][1] = status.finished_at
            status.returncode = code
            if code == 0 and is_complete(spec.folder, spec.kind):
                status.state = DONE
                status.write(spec.paths.status)
                final[name] = status
                on_event(Event("finished", name, handle.slot))
                continue
            status.log_tail = handle.logs(30)
            status.reason = classify_failure(code, status.log_tail) if code != 0 else \
                "exited 0 but its outputs are missing"
            if status.retries < retries and not stop.is_set():
                status.retries += 1
                status.state = INTERRUPTED
                status.write(spec.paths.status)
                on_event(Event("retrying", name, handle.slot, f"{status.reason}; retry {status.retries}/{retries}"))
                queue.insert(0, respec(spec) if respec else spec)  # resumes from its latest checkpoint
            else:
                status.state = FAILED
                status.write(spec.paths.status)
                final[name] = status
                on_event(Event("failed", name, handle.slot, status.reason))
        return ended

    while (queue or running) and not stop.is_set():
        for slot in free_slots():
            if not queue or stop.is_set():
                break
            launch(queue.pop(0), slot)
        if getattr(executor, "detach", False) and not queue:  # cluster jobs go on without us
            return {name: status for name, (_, status) in running.items()}
        if not reap():  # a freed slot is refilled at once, without sleeping first
            time.sleep(POLL_S)

    for name, (handle, status) in running.items():  # stopped by a signal: resumable later
        handle.cancel()
        status.state = INTERRUPTED
        status.finished_at = now()
        status.windows[-1][1] = status.finished_at
        status.reason = "interrupted by a signal"
        status.write(handle.spec.paths.status)
        final[name] = status
        on_event(Event("interrupted", name, handle.slot))
    for spec in queue:
        final.setdefault(spec.name, _status_for(spec))
    return final


