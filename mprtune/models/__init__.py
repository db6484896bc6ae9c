"""Base models as jobs see them: hub ids pass through, local paths resolve against the project root,
and models mprtune makes itself (tiny test Llamas, converted registry models) are built on first use."""

from __future__ import annotations

from pathlib import Path

from mprtune.config.matrix import BaseModel, Matrix


def is_local(model: BaseModel, root: Path) -> bool:
    return model.tiny_seed is not None or (root / model.path).exists() or Path(model.path).is_absolute()


def resolved_path(model: BaseModel, root: Path) -> str:
    """An absolute path for local models, the hub id otherwise."""
    return str((root / model.path).resolve()) if is_local(model, root) else model.path


def ensure_base_models(matrix: Matrix, root: Path, names: list[str] | None = None) -> list[Path]:
    """Build the missing tiny models of the matrix (tokenizer merges learnt from the data dir's files)."""
    from mprtune.models.tiny import ensure_tiny_llama

    built = []
    corpus = sorted((root / matrix.data_dir).glob("*.jsonl"))
    for model in matrix.models.values():
        if model.tiny_seed is None or (names is not None and model.name not in names):
            continue
        built.append(ensure_tiny_llama(root / model.path, model.tiny_seed, corpus))
    return built
