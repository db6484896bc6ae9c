"""Parse the text file that Slurm's ``jobcomp/filetxt`` plugin writes.

With ``JobCompType=jobcomp/filetxt`` and ``JobCompLoc=FILE`` slurmctld appends
one line per finished job (no database needed), e.g. (Slurm 22.05)::

    JobId=7 UserId=root(0) GroupId=root(0) Name=failer JobState=FAILED
    Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:34:54
    EndTime=2026-11-28T13:34:54 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp
    ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey=
    Cluster=unknown SubmitTime=2026-11-28T13:34:53 EligibleTime=2026-11-28T13:34:53
    DerivedExitCode=0:0 ExitCode=3:0

(all on one line, with a trailing space). Array tasks add
``ArrayJobId=N ArrayTaskId=M`` before ``DerivedExitCode``; heterogeneous jobs add
``HetJobId=N HetJobOffset=M``. Values are not quoted: ``Name`` and ``WorkDir``
may contain spaces (and even ``=``), so the line is split on the keys in their
fixed order instead of on whitespace.

Things worth knowing when reading these records:

* ``ExitCode`` is ``EXIT:SIGNAL``. ``exit 3`` gives ``FAILED`` / ``3:0``; a job
  killed by a signal gives ``FAILED`` / ``0:9``; a cancelled job is recorded as
  ``CANCELLED`` with ``ExitCode=0:0`` (``scontrol show job`` says ``0:15``).
* ``scontrol requeue`` writes a record with ``JobState=PENDING`` for the run it
  ended, and the job later gets another record under the same id: the latest
  record per job id is the one that counts.
* Times are local time, ``YYYY-MM-DDTHH:MM:SS``, or ``Unknown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["JobCompRecord", "parse_jobcomp", "parse_jobcomp_line", "read_jobcomp"]

# (key, required) in the order jobcomp_filetxt.c writes them.
_KEYS: tuple[tuple[str, bool], ...] = (
    ("JobId", True),
    ("UserId", True),
    ("GroupId", True),
    ("Name", True),
    ("JobState", True),
    ("Partition", True),
    ("TimeLimit", True),
    ("StartTime", True),
    ("EndTime", True),
    ("NodeList", True),
    ("NodeCnt", True),
    ("ProcCnt", True),
    ("WorkDir", True),
    ("ReservationName", True),
    ("Tres", True),
    ("Account", True),
    ("QOS", True),
    ("WcKey", True),
    ("Cluster", True),
    ("SubmitTime", True),
    ("EligibleTime", True),
    ("ArrayJobId", False),
    ("ArrayTaskId", False),
    ("HetJobId", False),
    ("HetJobOffset", False),
    ("DerivedExitCode", True),
    ("ExitCode", True),
)

# JobState is always an upper-case word followed by Partition: anchoring on that
# keeps a job name that contains " JobState=" from fooling the splitter.
_JOBSTATE_RE = re.compile(r" JobState=(?=[A-Z_]+ Partition=)")
_EXIT_RE = re.compile(r"^(-?\d+):(-?\d+)$")
_NO_TIME = {"", "Unknown", "unknown", "None", "N/A"}


@dataclass(frozen=True)
class JobCompRecord:
    """One finished (or requeued) job as recorded in the jobcomp file."""

    job_id: str
    name: str
    state: str
    exit_code: int | None
    signal: int | None
    start: str | None
    end: str | None
    array_job_id: str | None = None
    array_task_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


def _split_fields(line: str) -> dict[str, str] | None:
    """Split one record into ``{key: value}``; None if it is not a complete record."""
    if not line.startswith("JobId="):
        return None
    starts: list[tuple[str, int, int]] = []  # (key, key_start, value_start)
    pos = 0
    for key, required in _KEYS:
        if key == "JobId":
            starts.append((key, 0, len("JobId=")))
            pos = len("JobId=")
            continue
        if key == "JobState":
            m = _JOBSTATE_RE.search(line, pos)
            idx = m.start() if m else -1
        else:
            idx = line.find(f" {key}=", pos)
        if idx < 0:
            if required:
                return None
            continue
        value_start = idx + len(key) + 2
        starts.append((key, idx, value_start))
        pos = value_start
    out: dict[str, str] = {}
    for i, (key, _, value_start) in enumerate(starts):
        value_end = starts[i + 1][1] if i + 1 < len(starts) else len(line)
        out[key] = line[value_start:value_end]
    # Only the last value (ExitCode) carries the trailing space/newline.
    out["ExitCode"] = out["ExitCode"].strip()
    return out


def _exit(value: str | None) -> tuple[int | None, int | None]:
    m = _EXIT_RE.match(value or "")
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2))


def _time(value: str | None) -> str | None:
    if value is None or value in _NO_TIME:
        return None
    return value


def parse_jobcomp_line(line: str) -> JobCompRecord | None:
    """Parse one line; None for blank, foreign or incomplete (half-written) lines."""
    fields = _split_fields(line.rstrip("\r\n"))
    if fields is None:
        return None
    job_id = fields["JobId"].strip()
    if not job_id.isdigit():
        return None
    exit_code, signal = _exit(fields.get("ExitCode"))
    array_job_id = fields.get("ArrayJobId")
    array_task_id = fields.get("ArrayTaskId")
    return JobCompRecord(
        job_id=job_id,
        name=fields["Name"],
        state=fields["JobState"].strip(),
        exit_code=exit_code,
        signal=signal,
        start=_time(fields.get("StartTime")),
        end=_time(fields.get("EndTime")),
        array_job_id=array_job_id.strip() if array_job_id is not None else None,
        array_task_id=array_task_id.strip() if array_task_id is not None else None,
        fields=fields,
    )


def parse_jobcomp(text: str) -> dict[str, JobCompRecord]:
    """Parse a whole jobcomp file: ``{job_id: latest record}``.

    Later lines win, so a requeued job (several records under one id) ends up
    with its last one. Array tasks are also reachable as ``"ARRAYID_TASKID"``
    (the form ``squeue`` prints, e.g. ``"11_0"``), besides their own job id.
    Lines that do not parse (e.g. one still being written) are skipped.
    """
    records: dict[str, JobCompRecord] = {}
    for line in text.split("\n"):
        rec = parse_jobcomp_line(line)
        if rec is None:
            continue
        records[rec.job_id] = rec
        if rec.array_job_id is not None and rec.array_task_id is not None:
            records[f"{rec.array_job_id}_{rec.array_task_id}"] = rec
    return records


def read_jobcomp(path: str | Path) -> dict[str, JobCompRecord]:
    """:func:`parse_jobcomp` of a file; ``{}`` when it does not exist (yet)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    return parse_jobcomp(text)
