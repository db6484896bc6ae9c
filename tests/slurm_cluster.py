"""Session fixture giving tests a real single-node Slurm cluster.

Not a test module: import the fixture into the test module that needs it::

    from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401

How the cluster is found, in this order:

1. ``MPRTUNE_SLURM_CONF`` names a slurm.conf whose cluster answers ``sinfo``
   (CI brings the cluster up itself with ``scripts/slurm-cluster.sh up``): use
   it, never tear it down. The base dir is the folder of that slurm.conf.
2. Otherwise run ``scripts/slurm-cluster.sh up`` (bounded by
   ``MPRTUNE_SLURM_UP_TIMEOUT``, default 120 s) in ``MPRTUNE_SLURM_BASE``
   (default: the folder of ``MPRTUNE_SLURM_CONF`` if set, else
   /tmp/mprtune-slurm) and ``down`` at the end of the session. A cluster that
   is already up there (started by hand) is used and left up.
3. If it cannot be started (not root, no packages and no apt-get, start-up
   failed): ``pytest.skip`` with the reason, or ``pytest.fail`` when
   ``MPRTUNE_SLURM_REQUIRED=1`` (so CI cannot silently skip the Slurm tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT_ROOT / "scripts" / "slurm-cluster.sh"
DEFAULT_BASE = Path("/tmp/mprtune-slurm")
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class SlurmCluster:
    """A running cluster: pass ``env`` to subprocesses that call Slurm clients."""

    conf: Path
    base_dir: Path
    env: dict[str, str] = field(repr=False)

    @property
    def jobcomp(self) -> Path:
        """The ``jobcomp/filetxt`` file: one line per finished job."""
        return self.base_dir / "jobcomp.txt"

    def run(
        self, *args: str, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client (``sbatch``, ``squeue``, ...) against this cluster."""
        return subprocess.run(
            list(args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )


def _env_with_conf(conf: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SLURM_CONF"] = str(conf)
    path = env.get("PATH", "")
    env["PATH"] = f"{path}:{_SBIN_PATH}" if path else _SBIN_PATH
    return env


def _sinfo_ok(conf: Path) -> bool:
    if not conf.is_file():
        return False
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader"],
            check=False,
            env=_env_with_conf(conf),
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _script(command: str, base: Path, timeout: float) -> tuple[int | None, str]:
    """Run the cluster script in its own process group.

    Returns (exit code, or None on timeout; combined output).
    """
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), command, str(base)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env_with_conf(base / "slurm.conf"),
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        # The daemons detach into their own sessions: this only ends the script
        # and what it was waiting on (apt-get, a client).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        return None, out


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _give_up(reason: str) -> None:
    if os.environ.get("MPRTUNE_SLURM_REQUIRED", "") not in ("", "0"):
        pytest.fail(
            f"Slurm cluster required (MPRTUNE_SLURM_REQUIRED) but {reason}",
            pytrace=False,
        )
    pytest.skip(reason)


def _cannot_start_reason() -> str | None:
    if os.name != "posix" or shutil.which("bash") is None:
        return "the Slurm test cluster needs bash on Linux"
    if not SCRIPT.is_file():
        return f"{SCRIPT} is missing"
    if os.geteuid() != 0:
        return (
            "the Slurm test cluster must be started as root (or set MPRTUNE_SLURM_CONF)"
        )
    path = _env_with_conf(DEFAULT_BASE)["PATH"]
    have_slurm = all(
        shutil.which(b, path=path) for b in ("slurmctld", "slurmd", "sbatch", "munged")
    )
    if not have_slurm and shutil.which("apt-get", path=path) is None:
        return "Slurm is not installed and there is no apt-get to install it"
    return None


def _start(base: Path, timeout: float) -> Iterator[SlurmCluster]:
    conf = base / "slurm.conf"
    # Already up (e.g. started by hand): use it, and leave it up afterwards.
    # The script's status is quick when nothing runs (sinfo would retry ~10 s).
    if SCRIPT.is_file() and _script("status", base, 30)[0] == 0 and _sinfo_ok(conf):
        yield SlurmCluster(conf=conf, base_dir=base, env=_env_with_conf(conf))
        return
    reason = _cannot_start_reason()
    if reason is not None:
        _give_up(reason)
    rc, out = _script("up", base, timeout)
    if rc != 0:
        _script("down", base, 60)
        what = f"timed out after {timeout:.0f}s" if rc is None else f"exited {rc}"
        _give_up(f"scripts/slurm-cluster.sh up {what}:\n{_tail(out)}")
    if not _sinfo_ok(conf):
        _script("down", base, 60)
        _give_up(f"cluster in {base} does not answer sinfo after up:\n{_tail(out)}")
    try:
        yield SlurmCluster(conf=conf, base_dir=base, env=_env_with_conf(conf))
    finally:
        rc, out = _script("down", base, 90)
        if rc != 0:
            print(f"scripts/slurm-cluster.sh down failed ({rc}):\n{_tail(out)}")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running single-node Slurm cluster (2 fake GPUs, jobcomp file)."""
    given = os.environ.get("MPRTUNE_SLURM_CONF")
    if given:
        conf = Path(given).resolve()
        if _sinfo_ok(conf):
            yield SlurmCluster(
                conf=conf, base_dir=conf.parent, env=_env_with_conf(conf)
            )
            return
    base_env = os.environ.get("MPRTUNE_SLURM_BASE")
    base = Path(base_env or (Path(given).parent if given else DEFAULT_BASE)).resolve()
    timeout = float(os.environ.get("MPRTUNE_SLURM_UP_TIMEOUT") or 120)
    yield from _start(base, timeout)
