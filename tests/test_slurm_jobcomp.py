"""Unit tests for mprtune.launch.backends.slurm_jobcomp on lines captured from a real cluster.

The literals below were written by Slurm 22.05.8 (Debian 12) with
``JobCompType=jobcomp/filetxt`` on the test cluster of scripts/slurm-cluster.sh;
each record is one line ending in a space.
"""

from __future__ import annotations

import pytest

from mprtune.launch.backends.slurm_jobcomp import (
    JobCompRecord,
    parse_jobcomp,
    parse_jobcomp_line,
    read_jobcomp,
)

# sbatch --wrap 'echo ...; sleep 3'
COMPLETED = (
    "JobId=2 UserId=root(0) GroupId=root(0) Name=wrap JobState=COMPLETED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:34:43 "
    "EndTime=2026-11-28T13:34:47 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:34:43 EligibleTime=2026-11-28T13:34:43 "
    "DerivedExitCode=0:0 ExitCode=0:0 "
)

FAILED_EXIT3 = (
    "JobId=7 UserId=root(0) GroupId=root(0) Name=failer JobState=FAILED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:34:54 "
    "EndTime=2026-11-28T13:34:54 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:34:53 EligibleTime=2026-11-28T13:34:53 "
    "DerivedExitCode=0:0 ExitCode=3:0 "
)

CANCELLED_RUNNING = (
    "JobId=6 UserId=root(0) GroupId=root(0) Name=sleeper JobState=CANCELLED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:34:54 "
    "EndTime=2026-11-28T13:34:55 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:34:53 EligibleTime=2026-11-28T13:34:53 "
    "DerivedExitCode=0:0 ExitCode=0:0 "
)

CANCELLED_PENDING = (
    "JobId=8 UserId=root(0) GroupId=root(0) Name=pend JobState=CANCELLED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:34:55 "
    "EndTime=2026-11-28T13:34:55 NodeList=(null) NodeCnt=0 ProcCnt=0 "
    "WorkDir=/tmp/exp ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 "
    "Account= QOS= WcKey= Cluster=unknown SubmitTime=2026-11-28T13:34:53 "
    "EligibleTime=2026-11-28T14:34:53 DerivedExitCode=0:0 ExitCode=0:0 "
)

KILLED_SIGNAL_SPACES = (
    "JobId=9 UserId=root(0) GroupId=root(0) Name=name with spaces=x JobState=FAILED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:35:01 "
    "EndTime=2026-11-28T13:35:01 NodeList=vm NodeCnt=1 ProcCnt=1 "
    "WorkDir=/tmp/exp/dir with space ReservationName= "
    "Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= Cluster=unknown "
    "SubmitTime=2026-11-28T13:35:00 EligibleTime=2026-11-28T13:35:00 "
    "DerivedExitCode=0:0 ExitCode=0:9 "
)

ARRAY_TASK0 = (
    "JobId=13 UserId=root(0) GroupId=root(0) Name=arr JobState=COMPLETED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:35:02 "
    "EndTime=2026-11-28T13:35:02 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:35:00 EligibleTime=2026-11-28T13:35:01 "
    "ArrayJobId=11 ArrayTaskId=0 DerivedExitCode=0:0 ExitCode=0:0 "
)

ARRAY_TASK1 = (
    "JobId=14 UserId=root(0) GroupId=root(0) Name=arr JobState=FAILED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:35:03 "
    "EndTime=2026-11-28T13:35:03 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:35:00 EligibleTime=2026-11-28T13:35:01 "
    "ArrayJobId=11 ArrayTaskId=1 DerivedExitCode=0:0 ExitCode=1:0 "
)

ARRAY_TASK2 = (
    "JobId=11 UserId=root(0) GroupId=root(0) Name=arr JobState=FAILED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:35:04 "
    "EndTime=2026-11-28T13:35:04 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:35:00 EligibleTime=2026-11-28T13:35:01 "
    "ArrayJobId=11 ArrayTaskId=2 DerivedExitCode=0:0 ExitCode=2:0 "
)

TIMEOUT = (
    "JobId=15 UserId=root(0) GroupId=root(0) Name=tl2 JobState=TIMEOUT "
    "Partition=debug TimeLimit=1 StartTime=2026-11-28T13:35:42 "
    "EndTime=2026-11-28T13:37:05 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:35:41 EligibleTime=2026-11-28T13:35:41 "
    "DerivedExitCode=0:0 ExitCode=0:0 "
)

REQUEUED_FIRST = (
    "JobId=12 UserId=root(0) GroupId=root(0) Name=rq JobState=PENDING "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:35:05 "
    "EndTime=2026-11-28T13:35:26 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:35:00 EligibleTime=2026-11-28T13:35:00 "
    "DerivedExitCode=0:0 ExitCode=0:0 "
)

REQUEUED_LAST = (
    "JobId=12 UserId=root(0) GroupId=root(0) Name=rq JobState=CANCELLED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:35:35 "
    "EndTime=2026-11-28T13:35:38 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/exp "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:35:26 EligibleTime=2026-11-28T13:35:35 "
    "DerivedExitCode=0:0 ExitCode=0:0 "
)


# scancel of an array (--array=0-3%1) while task 0 had completed, task 1 ran and
# tasks 2-3 were pending: task 1 gets its own record, the pending tasks only
# this one record under the array's id, without ArrayJobId/ArrayTaskId.
ARRAY_META_CANCELLED_PENDING = (
    "JobId=3 UserId=root(0) GroupId=root(0) Name=wrap JobState=CANCELLED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:43:15 "
    "EndTime=2026-11-28T13:43:15 NodeList=(null) NodeCnt=0 ProcCnt=1 "
    "WorkDir=/work/main ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 "
    "Account= QOS= WcKey= Cluster=unknown SubmitTime=2026-11-28T13:43:12 "
    "EligibleTime=unknown DerivedExitCode=0:0 ExitCode=0:0 "
)
ARRAY_CANCELLED_RUNNING_TASK = (
    "JobId=5 UserId=root(0) GroupId=root(0) Name=wrap JobState=CANCELLED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-28T13:43:15 "
    "EndTime=2026-11-28T13:43:15 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/work/main "
    "ReservationName= Tres=cpu=1,mem=21736M,node=1,billing=1 Account= QOS= WcKey= "
    "Cluster=unknown SubmitTime=2026-11-28T13:43:12 EligibleTime=2026-11-28T13:43:15 "
    "ArrayJobId=3 ArrayTaskId=1 DerivedExitCode=0:0 ExitCode=0:0 "
)


def _text(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def test_completed() -> None:
    rec = parse_jobcomp(_text(COMPLETED))["2"]
    assert rec == JobCompRecord(
        job_id="2",
        name="wrap",
        state="COMPLETED",
        exit_code=0,
        signal=0,
        start="2026-11-28T13:34:43",
        end="2026-11-28T13:34:47",
    )
    assert rec.array_job_id is None and rec.array_task_id is None
    assert rec.fields["NodeList"] == "vm"
    assert rec.fields["WorkDir"] == "/tmp/exp"
    assert rec.fields["Tres"] == "cpu=1,mem=21736M,node=1,billing=1"
    assert rec.fields["ReservationName"] == ""
    assert rec.fields["ExitCode"] == "0:0"


def test_exit_3_is_failed_with_exit_code_3() -> None:
    rec = parse_jobcomp(_text(FAILED_EXIT3))["7"]
    assert (rec.state, rec.exit_code, rec.signal) == ("FAILED", 3, 0)
    assert rec.name == "failer"


def test_cancelled_running_and_pending() -> None:
    recs = parse_jobcomp(_text(CANCELLED_RUNNING, CANCELLED_PENDING))
    assert recs["6"].state == "CANCELLED"
    # jobcomp records 0:0 for a cancelled job (scontrol shows 0:15).
    assert (recs["6"].exit_code, recs["6"].signal) == (0, 0)
    assert recs["8"].state == "CANCELLED"
    assert recs["8"].fields["NodeList"] == "(null)"


def test_signal_and_values_with_spaces() -> None:
    rec = parse_jobcomp_line(KILLED_SIGNAL_SPACES)
    assert rec is not None
    assert rec.job_id == "9"
    assert rec.name == "name with spaces=x"
    assert rec.fields["WorkDir"] == "/tmp/exp/dir with space"
    assert (rec.state, rec.exit_code, rec.signal) == ("FAILED", 0, 9)


def test_timeout() -> None:
    rec = parse_jobcomp(_text(TIMEOUT))["15"]
    assert rec.state == "TIMEOUT"
    assert rec.fields["TimeLimit"] == "1"
    assert rec.start == "2026-11-28T13:35:42"
    assert rec.end == "2026-11-28T13:37:05"


def test_array_tasks_by_job_id_and_by_array_id() -> None:
    recs = parse_jobcomp(_text(ARRAY_TASK0, ARRAY_TASK1, ARRAY_TASK2))
    assert recs["13"].array_job_id == "11" and recs["13"].array_task_id == "0"
    assert recs["11_0"] is recs["13"]
    assert recs["11_1"].exit_code == 1 and recs["11_1"].state == "FAILED"
    # The array's own id is the job id of its last task.
    assert recs["11"] is recs["11_2"]
    assert recs["11"].exit_code == 2
    assert recs["13"].fields["DerivedExitCode"] == "0:0"
    assert recs["13"].fields["EligibleTime"] == "2026-11-28T13:35:01"


def test_requeued_job_latest_record_wins() -> None:
    first = parse_jobcomp_line(REQUEUED_FIRST)
    assert first is not None and first.state == "PENDING"
    recs = parse_jobcomp(_text(REQUEUED_FIRST, REQUEUED_LAST))
    assert recs["12"].state == "CANCELLED"
    assert recs["12"].start == "2026-11-28T13:35:35"
    recs = parse_jobcomp(_text(REQUEUED_LAST, REQUEUED_FIRST))
    assert recs["12"].state == "PENDING"


def test_whole_file_mixed() -> None:
    text = _text(
        COMPLETED,
        FAILED_EXIT3,
        CANCELLED_RUNNING,
        CANCELLED_PENDING,
        KILLED_SIGNAL_SPACES,
        ARRAY_TASK0,
        ARRAY_TASK1,
        ARRAY_TASK2,
        REQUEUED_FIRST,
        REQUEUED_LAST,
        TIMEOUT,
    )
    recs = parse_jobcomp(text)
    assert set(recs) == {
        "2",
        "7",
        "6",
        "8",
        "9",
        "13",
        "14",
        "11",
        "11_0",
        "11_1",
        "11_2",
        "12",
        "15",
    }
    assert {k: r.state for k, r in recs.items() if "_" not in k} == {
        "2": "COMPLETED",
        "7": "FAILED",
        "6": "CANCELLED",
        "8": "CANCELLED",
        "9": "FAILED",
        "13": "COMPLETED",
        "14": "FAILED",
        "11": "FAILED",
        "12": "CANCELLED",
        "15": "TIMEOUT",
    }


def test_partial_blank_and_foreign_lines_are_skipped() -> None:
    half = COMPLETED[: COMPLETED.index(" DerivedExitCode=")]
    text = "\n" + half + "\n" + "garbage line\n" + FAILED_EXIT3  # last line: no newline
    recs = parse_jobcomp(text)
    assert set(recs) == {"7"}
    assert parse_jobcomp("") == {}
    assert parse_jobcomp_line("") is None
    assert parse_jobcomp_line("JobId=abc Name=x") is None


def test_crlf_and_missing_trailing_space() -> None:
    rec = parse_jobcomp(FAILED_EXIT3.rstrip() + "\r\n")["7"]
    assert (rec.exit_code, rec.signal) == (3, 0)


def test_unknown_times_are_none() -> None:
    line = CANCELLED_PENDING.replace("StartTime=2026-11-28T13:34:55", "StartTime=Unknown")
    rec = parse_jobcomp_line(line)
    assert rec is not None
    assert rec.start is None
    assert rec.end == "2026-11-28T13:34:55"


def test_name_containing_other_keys() -> None:
    line = COMPLETED.replace("Name=wrap ", "Name=a JobState=X Partition y ExitCode=9:9 ")
    rec = parse_jobcomp_line(line)
    assert rec is not None
    assert rec.name == "a JobState=X Partition y ExitCode=9:9"
    assert rec.state == "COMPLETED"
    assert rec.exit_code == 0


@pytest.mark.parametrize("exists", [True, False])
def test_read_jobcomp(tmp_path, exists: bool) -> None:
    path = tmp_path / "jobcomp.txt"
    if exists:
        path.write_text(_text(COMPLETED, FAILED_EXIT3))
        assert set(read_jobcomp(path)) == {"2", "7"}
    else:
        assert read_jobcomp(path) == {}


def test_cancelled_array_with_pending_tasks() -> None:
    recs = parse_jobcomp(_text(ARRAY_CANCELLED_RUNNING_TASK, ARRAY_META_CANCELLED_PENDING))
    assert recs["3_1"] is recs["5"]
    assert recs["5"].state == "CANCELLED"
    meta = recs["3"]
    assert meta.state == "CANCELLED"
    assert meta.array_job_id is None and meta.array_task_id is None
    assert meta.fields["EligibleTime"] == "unknown"
    assert "3_2" not in recs and "3_3" not in recs
