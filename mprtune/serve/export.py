"""`mprtune export`: merge a finished variant's adapter into its base model with `llamafactory-cli export`,
then write its model card (README.md) next to the weights.

The merged model goes to a folder of the user's choosing, never into a run folder or the runs
dir: a finished run stays byte-identical (export's config and log go beside the merged model).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mprtune.config.render import render_template
from mprtune.errors import MprtuneError
from mprtune.io import atomic_write, tail
from mprtune.launch.env import venv_bin
from mprtune.launch.jobs import JobPaths
from mprtune.models import resolved_path
from mprtune.workspace import Workspace

EXPORT_CONFIG = "mprtune-export.yaml"
EXPORT_LOG = "mprtune-export.log"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_export_dir(ws: Workspace, out: Path) -> Path:
    out = out.resolve()
    runs = ws.runs.resolve()
    if _inside(out, runs) or _inside(runs, out):
        raise MprtuneError(
            f"--out {out}: inside (or holding) the runs dir {runs}; a merged model must not "
            f"overwrite run files: choose a folder outside it, e.g. --out exports/<variant>"
        )
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise MprtuneError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_CONFIG).is_file():
        raise MprtuneError(
            f"--out {out}: folder exists and is not an earlier `mprtune export`; choose an empty or new folder"
        )
    return out


def export_variant(ws: Workspace, name: str, out: Path, device: str = "cpu") -> Path:
    variant = ws.select([name])[0]
    run = JobPaths(ws.run_dir(name))
    if not run.is_complete("train"):
        raise MprtuneError(f"{run.folder}: variant {name} has not finished training; run `mprtune train {name}`")
    out = check_export_dir(ws, out)
    config = render_template(
        "export.yaml.j2",
        variant=name,
        model_path=resolved_path(variant.model, ws.root),
        adapter_dir=str(run.folder),
        template=variant.model.template,
        export_dir=str(out),
        export_size=5,
        export_device=device,
    )
    config_path = atomic_write(out / EXPORT_CONFIG, config)
    log = out / EXPORT_LOG
    with log.open("wb") as handle:
        code = subprocess.run(
            [str(venv_bin() / "llamafactory-cli"), "export", str(config_path)],
            cwd=ws.root,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    if code != 0 or not (out / "config.json").is_file():
        last = tail(log, 1).strip() or f"exit code {code}"
        raise MprtuneError(f"llamafactory-cli export failed for {name} ({log}): {last}")
    from mprtune.serve.card import write_model_card

    write_model_card(ws, name, out, merged=True)
    return out
