"""Session fixture giving tests a real single-node Slurm cluster.

Not a test module: conftest.py imports the fixture (``slurm_cluster``).

How the cluster is found, in this order:

1. ``MPRTUNE_SLURM_CONF`` names the slurm.conf of a running cluster (e.g. one started with
   ``scripts/slurm-cluster.sh up``): use it, never stop it. The base dir is its folder.
2. Otherwise start a private cluster with ``scripts/slurm-cluster.sh up`` in a fresh temporary
   folder (``tempfile``, so ``$TMPDIR``; two test runs get two clusters on two port pairs) from
   the Slurm that is installed, bounded by ``MPRTUNE_SLURM_UP_TIMEOUT`` (default 120 s); stop it
   and remove the folder at the end of the session.

Tests never install anything nor write outside their temporary folders: without Slurm (or
without root, which the daemons and the fake GPUs need) the Slurm tests skip with the reason;
``make slurm-install`` or CI (``.ci/run``) installs Slurm. With ``MPRTUNE_SLURM_REQUIRED=1`` (CI
sets it once Slurm is installed) a cluster that cannot start fails the tests instead, so CI cannot
silently skip them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT_ROOT / "scripts" / "slurm-cluster.sh"
# Where Debian puts the daemons; a non-root PATH often lacks them.
SBIN_DIRS: tuple[str, ...] = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# What scripts/slurm-cluster.sh up runs (the same list as its REQUIRED_BINARIES).
REQUIRED_BINARIES = (
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "scancel",
    "sinfo",
    "scontrol",
    "munged",
    "munge",
    "unmunge",
)
INSTALL_HINT = (
    "install it with `make slurm-install` (root, apt-get) or set MPRTUNE_SLURM_CONF to a running cluster's slurm.conf"
)


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

    def run(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client (``sbatch``, ``squeue``, ...) against this cluster."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout, check=check)


def search_path(environ: Mapping[str, str], sbin_dirs: Sequence[str] = SBIN_DIRS) -> str:
    """PATH as the cluster script sees it: the caller's PATH, then the sbin folders."""
    return ":".join([p for p in environ.get("PATH", "").split(":") if p] + list(sbin_dirs))


def cluster_env(conf: Path, environ: Mapping[str, str], sbin_dirs: Sequence[str] = SBIN_DIRS) -> dict[str, str]:
    env = dict(environ)
    env["SLURM_CONF"] = str(conf)
    env["PATH"] = search_path(environ, sbin_dirs)
    env["MPRTUNE_SLURM_SBIN"] = ":".join(sbin_dirs)  # the script searches exactly what we checked
    return env


def missing_binaries(path: str) -> list[str]:
    return [b for b in REQUIRED_BINARIES if shutil.which(b, path=path) is None]


def cannot_start_reason(path: str) -> str | None:
    """Why no private cluster can start here (None: it can), checked before running anything."""
    if os.name != "posix" or shutil.which("bash", path=path) is None:
        return "the Slurm test cluster needs bash on Linux"
    if not SCRIPT.is_file():
        return f"{SCRIPT} is missing"
    missing = missing_binaries(path)
    if missing:
        return f"Slurm is not installed (no {', '.join(missing)} on PATH): {INSTALL_HINT}"
    if os.geteuid() != 0:
        return (
            "the private Slurm test cluster must be started as root (daemons run as root, fake GPUs "
            "need mknod): run the tests as root or set MPRTUNE_SLURM_CONF to a running cluster's slurm.conf"
        )
    return None


def _sinfo_ok(conf: Path, env: Mapping[str, str]) -> bool:
    if not conf.is_file():
        return False
    try:
        proc = subprocess.run(["sinfo", "--noheader"], check=False, env=dict(env), capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _script(command: str, base: Path, env: Mapping[str, str], timeout: float) -> tuple[int | None, str]:
    """Run the cluster script in its own process group: (exit code or None on timeout, output)."""
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), command, str(base)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env),
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        # The daemons detach into their own sessions: this only ends the script and what it was
        # waiting on (a client); `down` stops the daemons by their pid files.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        return None, out


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _give_up(reason: str, environ: Mapping[str, str]) -> None:
    if environ.get("MPRTUNE_SLURM_REQUIRED", "") not in ("", "0"):
        pytest.fail(f"Slurm cluster required (MPRTUNE_SLURM_REQUIRED) but {reason}", pytrace=False)
    pytest.skip(reason)


def _stop(base: Path, env: Mapping[str, str]) -> None:
    rc, out = _script("down", base, env, 90)
    if rc == 0:
        shutil.rmtree(base, ignore_errors=True)
    else:  # leave the folder (logs, pid files) for whoever stops what is left
        print(f"scripts/slurm-cluster.sh down {base} failed ({rc}):\n{_tail(out)}")


def clusters(
    environ: Mapping[str, str],
    temp_root: Path | None = None,
    sbin_dirs: Sequence[str] = SBIN_DIRS,
    nodes: int = 1,
) -> Iterator[SlurmCluster]:
    """Yield one cluster (found or started, see the module docstring), or skip/fail with the reason.

    ``temp_root`` is where the private cluster's folder is made (default: the system temp dir).
    ``nodes`` > 1: nodes n1..nN on this host, one slurmd and one fake GPU each; a running one is
    named by ``MPRTUNE_SLURM_CONF_<N>_NODES`` instead of ``MPRTUNE_SLURM_CONF``.
    """
    given = environ.get("MPRTUNE_SLURM_CONF" if nodes == 1 else f"MPRTUNE_SLURM_CONF_{nodes}_NODES")
    if given:
        conf = Path(given).resolve()
        env = cluster_env(conf, environ, sbin_dirs)
        if not _sinfo_ok(conf, env):
            _give_up(f"MPRTUNE_SLURM_CONF={given}: that cluster does not answer sinfo", environ)
        yield SlurmCluster(conf=conf, base_dir=conf.parent, env=env)
        return
    reason = cannot_start_reason(search_path(environ, sbin_dirs))
    if reason is not None:
        _give_up(reason, environ)
    base = Path(tempfile.mkdtemp(prefix="mprtune-slurm-", dir=temp_root)).resolve()
    conf = base / "slurm.conf"
    env = cluster_env(conf, environ, sbin_dirs)
    env["MPRTUNE_SLURM_NODES"] = str(nodes)
    timeout = float(environ.get("MPRTUNE_SLURM_UP_TIMEOUT") or 120)
    rc, out = _script("up", base, env, timeout)
    if rc != 0 or not _sinfo_ok(conf, env):
        _stop(base, env)
        what = f"timed out after {timeout:.0f}s" if rc is None else f"exited {rc}"
        if rc == 0:
            what = "started but does not answer sinfo"
        _give_up(f"scripts/slurm-cluster.sh up {base} {what}:\n{_tail(out)}", environ)
    try:
        yield SlurmCluster(conf=conf, base_dir=base, env=env)
    finally:
        _stop(base, env)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running single-node Slurm cluster (2 fake GPUs, jobcomp file)."""
    yield from clusters(os.environ)


@pytest.fixture(scope="session")
def slurm_two_nodes() -> Iterator[SlurmCluster]:
    """A running two-node Slurm cluster on this host (n1, n2: one slurmd, one fake GPU, 2 CPUs each)."""
    yield from clusters(os.environ, nodes=2)
