"""The work queue: keep every slot busy, retry failures (resuming), stop cleanly on a signal.

The next job starts the moment a slot frees (no "launch two, wait for both"). A job `width` slots
wide starts when that many are free at once; launch/policy.py decides which jobs start (one-slot
jobs fill the gaps around a waiting wide job without delaying its reservation). With a cluster
executor (`slots() is None`) every job is submitted at once and the cluster queues them.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mprtune.launch.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    INTERRUPTED,
    RUNNING,
    SLOT_SEP,
    Executor,
    JobHandle,
    JobSpec,
    JobStatus,
    now,
    slot_parts,
)
from mprtune.launch.policy import Busy, Waiting, pick
from mprtune.launch.state import classify_failure, config_digest, free_bytes, retryable

POLL_S = 0.01


@dataclass(frozen=True)
class Event:
    kind: str  # started | finished | retrying | failed | interrupted | cancelled | warning | reused
    name: str
    slot: str | None
    message: str = ""

    def line(self) -> str:
        """The one format every command prints events in (warnings as every command prints warnings)."""
        if self.kind == "warning":
            return f"Warning: {self.message}"
        where = f" (slot {self.slot})" if self.slot else ""
        return f"[{self.kind}] {self.name}{where} {self.message}".rstrip()


def _ignore(event: Event) -> None:
    pass


class WorkQueue:
    """Runs specs in the given order over the executor's slots; `run()` returns the final status per job."""

    def __init__(
        self,
        specs: list[JobSpec],
        executor: Executor,
        retries: int = 0,
        respec: Callable[[JobSpec], JobSpec] | None = None,
        on_event: Callable[[Event], None] = _ignore,
        stop: threading.Event | None = None,
    ) -> None:
        self.executor, self.retries = executor, retries
        self.respec = respec or (lambda spec: spec)
        self.on_event = on_event
        self.stop = stop or threading.Event()
        self.slots = executor.slots()
        self.queue = list(specs)
        self.running: dict[str, tuple[JobHandle, JobStatus]] = {}
        self.final: dict[str, JobStatus] = {}

    def _status_for(self, spec: JobSpec) -> JobStatus:
        warn = lambda message: self.on_event(Event("warning", spec.name, None, message))
        return JobStatus.read(spec.paths.status, warn) or JobStatus(spec.name, spec.kind)

    def _launch(self, spec: JobSpec, slot: str | None) -> None:
        status = self._status_for(spec)
        try:
            spec.paths.folder.mkdir(parents=True, exist_ok=True)
            spec.paths.config.write_text(spec.config_text)
            for name, text in spec.extra_files.items():
                (spec.folder / name).write_text(text)
            handle = self.executor.submit(spec, slot)
        except OSError as exc:  # a full disk fails this job, not `train`
            self._fail_to_start(spec, status, exc)
            return
        status.state, status.slot, status.backend = RUNNING, handle.slot, self.executor.name
        status.attempt += 1
        status.started_at, status.finished_at, status.returncode = now(), None, None
        status.reason = status.log_tail = None
        status.job_id, status.identity = handle.job_id, handle.identity
        status.config_sha256 = config_digest(spec.config_text)
        status.data_sha256 = spec.data_sha256
        status.windows.append([status.started_at, None])
        self._write(status, spec)
        self.running[spec.name] = (handle, status)
        self.on_event(Event("started", spec.name, handle.slot, f"attempt {status.attempt}"))

    def _fail_to_start(self, spec: JobSpec, status: JobStatus, exc: OSError) -> None:
        full = exc.errno == errno.ENOSPC
        status.state = FAILED
        status.reason = (
            "disk full (no space left on device) while writing the job's files: free space, then rerun; the run resumes"
            if full
            else f"could not write the job's files: {exc}"
        )
        self._write(status, spec)
        self.final[spec.name] = status
        self.on_event(Event("failed", spec.name, None, status.reason))

    def _write(self, status: JobStatus, spec: JobSpec) -> None:
        """A status that cannot be written (disk full) is reported, never a crash of the whole queue."""
        try:
            status.write(spec.paths.status)
        except OSError as exc:
            self.on_event(
                Event("warning", spec.name, status.slot, f"could not write {spec.paths.status}: {exc.strerror or exc}")
            )

    def _refuse_too_wide(self) -> None:
        """A job wider than all slots together would wait forever (the planner refuses it first)."""
        if self.slots is None:
            return
        for spec in [s for s in self.queue if s.width > len(self.slots)]:
            self.queue.remove(spec)
            status = self._status_for(spec)
            status.state = FAILED
            status.reason = f"needs {spec.width} slots at once, only {len(self.slots)} exist"
            self._write(status, spec)
            self.final[spec.name] = status
            self.on_event(Event("failed", spec.name, None, status.reason))

    def _to_start(self) -> list[tuple[JobSpec, str | None]]:
        """The queued jobs to launch now, each with its slot(s); removed from the queue."""
        if self.slots is None:
            chosen: list[tuple[JobSpec, str | None]] = [(spec, None) for spec in self.queue]
            self.queue = []
            return chosen
        busy = [
            Busy(tuple(slot_parts(handle.slot)), status.started_at or now(), handle.spec.estimate_s)
            for handle, status in self.running.values()
        ]
        held = {slot for job in busy for slot in job.slots}
        picks = pick(
            [Waiting(s.name, s.width, s.estimate_s) for s in self.queue],
            [slot for slot in self.slots if slot not in held],
            busy,
            now(),
        )
        picked: list[tuple[JobSpec, str | None]] = [(self.queue[index], SLOT_SEP.join(slots)) for index, slots in picks]
        for index, _ in sorted(picks, reverse=True):
            del self.queue[index]
        return picked

    def _finish(self, name: str, handle: JobHandle, status: JobStatus, code: int) -> None:
        spec = handle.spec
        on_disk = JobStatus.read(spec.paths.status)
        if on_disk is not None and on_disk.state == CANCELLED:  # `mprtune cancel`: no retry
            self.final[name] = on_disk
            self.on_event(Event("cancelled", name, handle.slot))
            return
        status.finished_at = now()
        status.windows[-1][1] = status.finished_at
        status.returncode = code
        if code == 0 and spec.paths.is_complete(spec.kind):
            status.state = DONE
            self._write(status, spec)
            self.final[name] = status
            self.on_event(Event("finished", name, handle.slot))
            return
        status.log_tail = handle.logs(30)
        status.reason = (
            classify_failure(code, status.log_tail, free_bytes(spec.folder))
            if code != 0
            else "exited 0 but its outputs are missing"
        )
        if status.retries < self.retries and retryable(status.reason) and not self.stop.is_set():
            status.retries += 1
            status.state = INTERRUPTED
            self._write(status, spec)
            self.on_event(
                Event("retrying", name, handle.slot, f"{status.reason}; retry {status.retries}/{self.retries}")
            )
            self.queue.insert(0, self.respec(spec))  # resumes from its newest complete checkpoint
        else:
            status.state = FAILED
            self._write(status, spec)
            self.final[name] = status
            self.on_event(Event("failed", name, handle.slot, status.reason))

    def _reap(self) -> bool:
        """Handle every job that ended; True if any did (its slot is free now)."""
        ended = False
        for name, (handle, status) in list(self.running.items()):
            code = handle.poll()
            if code is None:
                continue
            ended = True
            del self.running[name]
            self._finish(name, handle, status, code)
        return ended

    def _interrupt_running(self) -> None:
        for name, (handle, status) in self.running.items():  # stopped by a signal: resumable later
            handle.cancel()
            status.state = INTERRUPTED
            status.finished_at = now()
            status.windows[-1][1] = status.finished_at
            status.reason = "interrupted by a signal"
            self._write(status, handle.spec)
            self.final[name] = status
            self.on_event(Event("interrupted", name, handle.slot))

    def _wait(self) -> None:
        """Until a running job may have ended: at once where the executor can tell, else one poll."""
        wait = getattr(self.executor, "wait", None)
        if wait is None or not self.running:
            time.sleep(POLL_S)
        else:
            wait([handle for handle, _ in self.running.values()], POLL_S)

    def run(self) -> dict[str, JobStatus]:
        self._refuse_too_wide()
        while (self.queue or self.running) and not self.stop.is_set():
            # Reap, then launch, in one iteration: a slot freed here is refilled before any wait.
            freed = self._reap()
            for index, (spec, slot) in enumerate(chosen := self._to_start()):
                if self.stop.is_set():  # not launched: back to the queue, reported as pending
                    self.queue[:0] = [s for s, _ in chosen[index:]]
                    break
                self._launch(spec, slot)
            if self.executor.detach and not self.queue:  # cluster jobs go on without us
                return {name: status for name, (_, status) in self.running.items()}
            if not freed and not chosen:
                self._wait()
        self._interrupt_running()
        for spec in self.queue:
            self.final.setdefault(spec.name, self._status_for(spec))
        return self.final


def run_queue(
    specs: list[JobSpec],
    executor: Executor,
    retries: int = 0,
    respec: Callable[[JobSpec], JobSpec] | None = None,
    on_event: Callable[[Event], None] = _ignore,
    stop: threading.Event | None = None,
) -> dict[str, JobStatus]:
    """Run specs in order over the executor's slots; returns the final status per job."""
    return WorkQueue(specs, executor, retries, respec, on_event, stop).run()
