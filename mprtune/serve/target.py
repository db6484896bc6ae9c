"""What `mprtune serve` serves: one variant (or its base model) with the generation settings of `compare`.

The settings come from the prediction config `compare` ran (the predict folder's job.yaml) when it
exists, so the server answers like the predictions that were scored; before any compare they come
from the same render `compare` would use. Either way: same base model path, adapter, template,
cutoff and greedy decoding with the same max_new_tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mprtune.config.matrix import Variant
from mprtune.config.render import PredictSpec, baseline_key, render_template
from mprtune.errors import MprtuneError
from mprtune.evaluate.measure import chat_settings
from mprtune.evaluate.predictions import predict_config, predict_folder
from mprtune.launch.jobs import JobPaths
from mprtune.workspace import Workspace

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


@dataclass(frozen=True)
class ServeTarget:
    """One system to serve: the tuned variant, or (`--base`) its base model as `compare` ran it."""

    variant: Variant
    base: bool
    served_name: str  # the model id clients send: the variant name, or the baseline key with --base
    predict_folder: Path  # where `compare` keeps this system's predictions
    serve_folder: Path  # config, log, check results
    settings: dict[str, Any]  # LLaMA-Factory inference arguments
    settings_source: str  # the file the settings were read from, for the user
    compared: bool  # `compare` has finished predictions for this system
    max_samples: int | None  # `compare --limit`: eval rows per dataset that were predicted

    @property
    def max_new_tokens(self) -> int:
        return int(self.settings["max_new_tokens"])

    @property
    def system(self) -> str:
        return "base" if self.base else "tuned"


def resolve_target(ws: Workspace, name: str, base: bool = False) -> ServeTarget:
    """Check the variant can be served and gather its settings; raises MprtuneError with the fix."""
    variant = ws.select([name])[0]
    run = ws.run_dir(name)
    if not base:
        if not JobPaths(run).is_complete("train"):
            raise MprtuneError(
                f"{run}: variant {name} has not finished training; run `mprtune train {name}` "
                f"(or serve the base model with --base)"
            )
        missing = [f for f in ADAPTER_FILES if not (run / f).is_file()]
        if missing:
            raise MprtuneError(
                f"{run}: adapter file {missing[0]} is missing; retrain with `mprtune train {name}` "
                f"after deleting the run folder"
            )
    spec = PredictSpec(baseline_key(ws.matrix, variant) if base else name, variant, with_adapter=not base)
    folder = predict_folder(ws, spec)
    stored = JobPaths(folder).config
    if stored.is_file():
        config = yaml.safe_load(stored.read_text(encoding="utf-8")) or {}
        source = str(stored)
    else:
        config = yaml.safe_load(predict_config(ws, spec, None))
        source = f"{ws.matrix.source} (render of `compare`'s prediction config; compare has not run yet)"
    if not isinstance(config, dict) or "model_name_or_path" not in config:
        raise MprtuneError(
            f"{source}: not a prediction config (no model_name_or_path); delete {folder} and "
            f"re-run `mprtune compare {name}`"
        )
    settings = chat_settings(config)
    if base:
        settings.pop("adapter_name_or_path", None)
    elif not settings.get("adapter_name_or_path"):
        raise MprtuneError(f"{source}: prediction config has no adapter_name_or_path for {name}")
    settings.setdefault("max_new_tokens", 128)
    adapter = settings.get("adapter_name_or_path")
    if adapter and not all((Path(adapter) / f).is_file() for f in ADAPTER_FILES):
        raise MprtuneError(
            f"{source}: adapter_name_or_path {adapter} holds no adapter "
            f"({' + '.join(ADAPTER_FILES)}); re-run `mprtune compare {name}`"
        )
    return ServeTarget(
        variant=variant,
        base=base,
        served_name=spec.key,
        predict_folder=folder,
        serve_folder=run / "serve" / ("base" if base else "tuned"),
        settings=settings,
        settings_source=source,
        compared=JobPaths(folder).is_complete("predict"),
        max_samples=config.get("max_samples"),
    )


def api_yaml(target: ServeTarget) -> str:
    """The config for `llamafactory-cli api` (and for mprtune's own launcher, which reads the same file)."""
    return render_template("serve.yaml.j2", target=target, settings=target.settings)
