"""`mprtune export`: merge a finished variant's adapter into its base model with `llamafactory-cli export`,
then write its model card (README.md) next to the weights."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mprtune.errors import MprtuneError
from mprtune.jobs import JobPaths, tail
from mprtune.launcher import venv_bin
from mprtune.matrix import Matrix
from mprtune.models import resolved_path
from mprtune.render import atomic_write, render_template
from mprtune.runstate import is_complete


def export_variant(matrix: Matrix, name: str, runs: Path, root: Path, out: Path, device: str = "cpu") -> Path:
    variant = matrix.select([name])[0]
    run = JobPaths(runs / name)
    if not is_complete(run.folder, "train"):
        raise MprtuneError(f"{run.folder}: variant {name} has not finished training; run `mprtune train {name}`")
    out = out.resolve()
    config = render_template("export.yaml.j2", variant=name, model_path=resolved_path(variant.model, root),
                             adapter_dir=str(run.folder), template=variant.model.template,
                             export_dir=str(out), export_size=5, export_device=device)
    config_path = run.folder / "export.yaml"
    atomic_write(config_path, config)
    log = run.folder / "export.log"
    with log.open("wb") as handle:
        code = subprocess.run([str(venv_bin() / "llamafactory-cli"), "export", str(config_path)], cwd=root,
                              stdout=handle, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0 or not (out / "config.json").is_file():
        last = tail(log, 1).strip() or f"exit code {code}"
        raise MprtuneError(f"llamafactory-cli export failed for {name} ({log}): {last}")
    from mprtune.serve.card import write_model_card

    write_model_card(matrix, name, runs, root, out, merged=True)
    return out
