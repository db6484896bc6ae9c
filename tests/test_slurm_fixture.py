"""The Slurm test fixture never changes the system: without Slurm it skips, it never installs.

Fast (no daemons): the fixture's start logic and scripts/slurm-cluster.sh run with a PATH on which
Slurm and munge are absent, once without apt-get and once with a fake apt-get that records any call.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from slurm_cluster import REQUIRED_BINARIES, SCRIPT, clusters

# Anything that could install or start Slurm stays off the test PATH.
HIDDEN = set(REQUIRED_BINARIES) | {"apt-get", "apt", "aptitude", "dpkg", "srun", "salloc", "sacct", "sudo"}
DPKG_STATUS = Path("/var/lib/dpkg/status")


def tools_without_slurm(folder: Path) -> Path:
    """A folder of links to every command in /usr/bin and /bin except Slurm, munge and apt."""
    folder.mkdir()
    for source in (Path("/usr/local/bin"), Path("/usr/bin"), Path("/bin")):
        if not source.is_dir():
            continue
        for tool in source.iterdir():
            link = folder / tool.name
            if tool.name not in HIDDEN and not link.exists() and os.access(tool, os.X_OK):
                link.symlink_to(tool)
    return folder


def fake_apt_get(folder: Path, record: Path) -> Path:
    folder.mkdir()
    fake = folder / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {record}\nexit 0\n')
    fake.chmod(0o755)
    return folder


def dpkg_fingerprint() -> str | None:
    return hashlib.sha256(DPKG_STATUS.read_bytes()).hexdigest() if DPKG_STATUS.is_file() else None


@pytest.fixture(params=["no apt-get", "fake apt-get"])
def bare_machine(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """(environment, temp root, apt-get call record) for a machine without Slurm."""
    tools = tools_without_slurm(tmp_path / "tools")
    record = tmp_path / "apt-get-calls.txt"
    path = str(tools)
    if request.param == "fake apt-get":
        path = f"{fake_apt_get(tmp_path / 'fake', record)}:{path}"
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    env = {"PATH": path, "HOME": str(tmp_path), "TMPDIR": str(temp_root), "LC_ALL": "C", "MPRTUNE_SLURM_SBIN": ""}
    return env, temp_root, record


def test_the_fixture_skips_with_the_reason_and_installs_nothing(bare_machine) -> None:
    env, temp_root, record = bare_machine
    before = dpkg_fingerprint()
    with pytest.raises(pytest.skip.Exception) as skipped:
        next(clusters(env, temp_root=temp_root, sbin_dirs=()))
    reason = str(skipped.value)
    assert "Slurm is not installed" in reason and "make slurm-install" in reason, reason
    assert "slurmctld" in reason, "the reason names what is missing"
    assert not record.exists(), f"apt-get was called: {record.read_text()}"
    assert list(temp_root.iterdir()) == [], "nothing created, not even the cluster's temp folder"
    assert dpkg_fingerprint() == before


def test_when_slurm_is_required_the_fixture_fails_instead_of_skipping(bare_machine) -> None:
    env, temp_root, record = bare_machine
    with pytest.raises(pytest.fail.Exception, match="MPRTUNE_SLURM_REQUIRED.*Slurm is not installed"):
        next(clusters({**env, "MPRTUNE_SLURM_REQUIRED": "1"}, temp_root=temp_root, sbin_dirs=()))
    assert not record.exists()


def test_the_script_up_refuses_without_slurm_and_never_installs(bare_machine) -> None:
    env, temp_root, record = bare_machine
    before = dpkg_fingerprint()
    base = temp_root / "cluster"
    up = subprocess.run(["bash", str(SCRIPT), "up", str(base)], env=env, capture_output=True, text=True, timeout=60)
    assert up.returncode == 1, up.stderr
    assert "Slurm is not installed" in up.stderr and "install" in up.stderr, up.stderr
    down = subprocess.run(["bash", str(SCRIPT), "down", str(base)], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not record.exists(), f"apt-get was called: {record.read_text()}"
    assert dpkg_fingerprint() == before
    created = sorted(str(p.relative_to(temp_root)) for p in temp_root.rglob("*"))
    assert created == ["cluster", "cluster/.lock"], created


def test_the_default_cluster_folder_is_per_checkout_under_tmpdir(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)}
    line = subprocess.run(
        ["bash", str(SCRIPT), "env"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    conf = Path(line.removeprefix("export SLURM_CONF="))
    assert conf.name == "slurm.conf" and conf.parent.parent == tmp_path
    assert conf.parent.name.startswith("mprtune-slurm-")
    assert list(tmp_path.iterdir()) == [], "`env` only prints"
