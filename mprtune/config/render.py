"""Render every file LLaMA-Factory reads from the matrix, in memory first, then to disk atomically.

Committed files use paths relative to the project root, the working directory every job runs in
(LLaMA-Factory resolves dataset_dir, deepspeed and output_dir against the cwd). Run folders get
their own copy with absolute paths via `training_yaml(..., output_dir=...)`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mprtune.config import templating
from mprtune.config.matrix import REFERENCE_PROFILE, BaseModel, Matrix, Task, Variant, load_matrix
from mprtune.config.templating import TEMPLATES_DIR  # noqa: F401 (where the built-in templates are)
from mprtune.io import atomic_write
from mprtune.paths import CONFIGS_DIR, DATASET_INFO, MATRIX_FILE, runs_dir_name

DEEPSPEED_FILES = {"zero2": "ds_zero2.json", "zero3": "ds_zero3.json"}


@dataclass(frozen=True)
class RenderedFile:
    path: str  # posix, relative to the output root
    text: str
    kind: str  # train | predict | dataset_info | deepspeed


@dataclass(frozen=True)
class PredictSpec:
    """One prediction job: a base model on an eval set, with or without a variant's adapter."""

    key: str  # variant name (tuned) or base__<model>__<evals> (shared baseline)
    variant: Variant  # whose recipe the job uses; a baseline takes the first variant that needs it
    with_adapter: bool

    @property
    def model(self) -> BaseModel:
        return self.variant.model

    @property
    def task(self) -> Task:
        return self.variant.task

    @property
    def adapter_variant(self) -> str | None:
        return self.variant.name if self.with_adapter else None

    @property
    def is_baseline(self) -> bool:
        return not self.with_adapter


def yaml_scalar(value: Any) -> str:
    """One YAML scalar that round-trips through yaml.safe_load whatever the string holds."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:  # PyYAML (YAML 1.1) reads 5e-05 as a string: it needs a dot and a signed exponent
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            sign = "-" if exponent.startswith("-") else "+"
            return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    # A JSON string is a valid YAML double-quoted scalar: `:`, `#`, quotes, `on`, newlines stay strings.
    return json.dumps(str(value), ensure_ascii=False)


def render_template(name: str, **context: Any) -> str:
    """Template `name` rendered: the project's own templates/ override the built-in ones by file name."""
    return templating.render(name, context, (("y", yaml_scalar),))


def source_name(matrix: Matrix) -> str:
    return MATRIX_FILE if matrix.source.name == MATRIX_FILE else matrix.source.name


def training_config_path(variant_name: str) -> str:
    return f"{CONFIGS_DIR}/{variant_name}.yaml"


def predict_config_path(key: str) -> str:
    return f"{CONFIGS_DIR}/predict/{key}.yaml"


def default_output_dir(matrix: Matrix, variant_name: str) -> str:
    return f"{runs_dir_name(matrix.profile)}/{variant_name}"


def default_predict_dir(matrix: Matrix, spec: PredictSpec) -> str:
    runs = runs_dir_name(matrix.profile)
    return f"{runs}/{spec.key}/predict" if not spec.is_baseline else f"{runs}/baselines/{spec.key}"


def cutoff_len(variant: Variant) -> int:
    return int(variant.recipe.get("cutoff_len", variant.task.cutoff_len))


# Where each recipe key is written in train.yaml. Keys rendered elsewhere (cutoff_len, deepspeed)
# or by their own line are excluded; every other key the matrix accepts lands in a section, so a
# validated setting can never be silently dropped (tests/test_render.py checks every RECIPE_TYPES key).
RECIPE_SECTIONS: dict[str, tuple[str, ...]] = {
    "method": (
        "stage",
        "finetuning_type",
        "lora_rank",
        "lora_alpha",
        "lora_dropout",
        "lora_target",
        "additional_target",
    ),
    "dataset": ("max_samples", "packing", "neat_packing", "preprocessing_num_workers", "dataloader_num_workers"),
    "output": ("logging_steps", "save_steps", "save_total_limit", "plot_loss", "report_to"),
    "train": (
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "lr_scheduler_type",
        "warmup_ratio",
        "weight_decay",
        "bf16",
        "fp16",
        "use_cpu",
        "disable_gradient_checkpointing",
        "flash_attn",
        "seed",
    ),
}
MULTI_NODE_DDP_TIMEOUT_S = 10800  # 3 h; tokenization runs before the ranks start (backends/slurm.py)
RENDERED_APART = frozenset({"cutoff_len", "deepspeed", "extra_args", "gpus", "nodes"})


def recipe_sections(recipe: dict[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """The recipe split into train.yaml's sections; keys no section names go to `train`, sorted."""
    placed = {key for keys in RECIPE_SECTIONS.values() for key in keys}
    sections = {name: [(k, recipe[k]) for k in keys if k in recipe] for name, keys in RECIPE_SECTIONS.items()}
    sections["train"] += sorted((k, v) for k, v in recipe.items() if k not in placed and k not in RENDERED_APART)
    return sections


def training_yaml(
    matrix: Matrix,
    variant: Variant,
    output_dir: str | None = None,
    data_dir: str | None = None,
    model_path: str | None = None,
) -> str:
    stage = variant.recipe.get("deepspeed")
    return render_template(
        "train.yaml.j2",
        source=source_name(matrix),
        profile=matrix.profile,
        variant=variant,
        model_path=model_path or variant.model.path,
        sections=recipe_sections(variant.recipe),
        extra_args=sorted(variant.recipe.get("extra_args", {}).items()),
        deepspeed_file=f"{CONFIGS_DIR}/deepspeed/{DEEPSPEED_FILES[stage]}" if stage else "",
        data_dir=data_dir or matrix.data_dir,
        cutoff_len=cutoff_len(variant),
        output_dir=output_dir or default_output_dir(matrix, variant.name),
        self_path=training_config_path(variant.name),
        gpus=variant.gpus,
        system=variant.task.system,
        nodes=variant.nodes,
        ddp_timeout=MULTI_NODE_DDP_TIMEOUT_S
        if variant.nodes > 1 and "ddp_timeout" not in variant.recipe.get("extra_args", {})
        else None,
    )


# Recipe keys that change what a prediction job generates (precision, device); the rest of the
# recipe (learning rate, steps...) only shapes the adapter.
GENERATION_RECIPE_KEYS = ("bf16", "fp16", "use_cpu", "seed")
# LLaMA-Factory arguments (given under recipe.extra_args) that change how a conversation becomes a
# prompt: what the adapter was trained with must be what it is evaluated and served with, so they
# are carried into the prediction and serve configs and into the baseline's key.
FORMATTING_KEYS = ("default_system", "enable_thinking", "tool_format")


def formatting(variant: Variant) -> dict[str, Any]:
    """The prompt-formatting arguments of a variant: its task's system prompt and the formatting extra_args."""
    extra = variant.recipe.get("extra_args", {})
    found = {key: extra[key] for key in FORMATTING_KEYS if key in extra}
    if variant.task.system is not None:
        found["default_system"] = variant.task.system
    return found


def generation_settings(matrix: Matrix, variant: Variant) -> dict[str, Any]:
    """Everything that decides a prediction job's output besides the adapter.

    A shared baseline is keyed on all of it, so which variant happens to be listed first never
    changes the baseline a variant is compared with.
    """
    return {
        "model": variant.model.name,
        "model_path": variant.model.path,
        "template": variant.model.template,
        "eval": list(variant.task.eval),
        "cutoff_len": int(matrix.predict.get("cutoff_len", cutoff_len(variant))),
        "predict": {
            "per_device_eval_batch_size": 16,
            "max_new_tokens": 128,
            **{k: v for k, v in matrix.predict.items() if k not in ("cutoff_len", "latency_rows")},
        },
        "recipe": {k: variant.recipe[k] for k in GENERATION_RECIPE_KEYS if k in variant.recipe},
        # only when set: the keys (and so the committed prediction configs) of tasks without one stay as they were
        **({"formatting": formatting(variant)} if formatting(variant) else {}),
    }


def baseline_key(matrix: Matrix, variant: Variant) -> str:
    """`base__<model>__<eval sets>__<hash of the generation settings>`: readable and order-free."""
    settings = generation_settings(matrix, variant)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"base__{variant.model.name}__{'+'.join(variant.task.eval)}__{digest}"


def predict_specs(matrix: Matrix, variants: list[Variant]) -> list[PredictSpec]:
    """Tuned predictions for each variant plus one shared baseline per set of generation settings."""
    specs: dict[str, PredictSpec] = {}
    for variant in variants:
        key = baseline_key(matrix, variant)
        specs.setdefault(key, PredictSpec(key, variant, False))
        specs[variant.name] = PredictSpec(variant.name, variant, True)
    return list(specs.values())


def predict_yaml(
    matrix: Matrix,
    spec: PredictSpec,
    output_dir: str | None = None,
    adapter_dir: str | None = None,
    data_dir: str | None = None,
    model_path: str | None = None,
    max_samples: int | None = None,
) -> str:
    settings = generation_settings(matrix, spec.variant)
    adapter = adapter_dir or (default_output_dir(matrix, spec.adapter_variant) if spec.adapter_variant else "")
    description = (
        f"predictions of variant {spec.adapter_variant}"
        if spec.adapter_variant
        else f"baseline predictions of {spec.model.name} on {'+'.join(spec.task.eval)}"
    )
    return render_template(
        "predict.yaml.j2",
        source=source_name(matrix),
        profile=matrix.profile,
        description=description,
        model=spec.model,
        model_path=model_path or spec.model.path,
        max_samples=max_samples,
        adapter_dir=adapter,
        eval_datasets=settings["eval"],
        data_dir=data_dir or matrix.data_dir,
        cutoff_len=settings["cutoff_len"],
        output_dir=output_dir or default_predict_dir(matrix, spec),
        generation=sorted(settings["recipe"].items()),
        formatting=sorted(settings.get("formatting", {}).items()),
        predict=settings["predict"],
        self_path=predict_config_path(spec.key),
    )


def dataset_info_json(matrix: Matrix, entries: dict[str, dict[str, Any]] | None = None) -> str:
    """The registry mprtune writes; `entries` holds resolved imports (config/registry.py)."""
    from mprtune.config.registry import lf_entry, registry_lines

    entries = entries or {d.name: lf_entry(d) for d in matrix.datasets.values()}
    return render_template("dataset_info.json.j2", source=source_name(matrix), entries=registry_lines(entries))


def render_matrix(matrix: Matrix) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    variants = list(matrix.variants.values())
    for variant in variants:
        files.append(RenderedFile(training_config_path(variant.name), training_yaml(matrix, variant), "train"))
    for spec in predict_specs(matrix, variants):
        files.append(RenderedFile(predict_config_path(spec.key), predict_yaml(matrix, spec), "predict"))
    stages = sorted({v.recipe["deepspeed"] for v in variants if v.recipe.get("deepspeed")})
    for stage in stages:
        name = DEEPSPEED_FILES[stage]
        files.append(RenderedFile(f"{CONFIGS_DIR}/deepspeed/{name}", render_template(name + ".j2"), "deepspeed"))
    return files


def differs_on_disk(file: RenderedFile, out: Path) -> bool:
    target = out / file.path
    return not target.is_file() or target.read_text(encoding="utf-8") != file.text


def write_files(files: list[RenderedFile], out: Path) -> list[Path]:
    for file in files:
        if differs_on_disk(file, out):
            atomic_write(out / file.path, file.text)
    return [out / file.path for file in files]


def stale_files(files: list[RenderedFile], out: Path) -> list[str]:
    """Rendered YAMLs on disk that the matrix no longer produces (a removed or renamed variant)."""
    expected = {f.path for f in files}
    found = []
    for folder in (out / CONFIGS_DIR, out / CONFIGS_DIR / "predict"):
        if folder.is_dir():
            found += [p.relative_to(out).as_posix() for p in sorted(folder.glob("*.yaml"))]
    return [p for p in found if p not in expected]


def drifted_files(files: list[RenderedFile], out: Path) -> list[str]:
    """Files whose on-disk text differs from the render (missing counts), plus stale ones."""
    drifted = [file.path for file in files if differs_on_disk(file, out)]
    return drifted + [f"{p} (stale: no longer in the matrix)" for p in stale_files(files, out)]


@dataclass(frozen=True)
class RenderOutcome:
    written: list[Path]
    warnings: list[str]


def render_project(
    matrix: Matrix,
    out: Path,
    data_dir: Path | None = None,
    check_only: bool = False,
    lf_check: bool = True,
    cache_dir: Path | None = None,
) -> RenderOutcome:
    """Render in memory, verify with LLaMA-Factory, then write (or, with check_only, compare).

    `data_dir` is where the profile's datasets are looked for (default: `out / matrix.data_dir`;
    a profile rendered under .mprtune/ still trains from the project's data dir).
    """
    from mprtune.config import lfcheck
    from mprtune.config.registry import registry_paths, resolve, writable
    from mprtune.errors import ConfigError, DriftError

    files = render_matrix(matrix)
    registry = resolve(matrix, data_dir or out / matrix.data_dir)
    problems, info = list(registry.problems), ""
    if not registry.as_is:
        info = dataset_info_json(matrix, registry.entries)
        paths = registry_paths(matrix)
        problems += [line for path in paths if (line := writable(out, path))]
        files += [RenderedFile(path, info, "dataset_info") for path in paths]
    # Profiles with datasets of their own keep their registry in their own data dir, rendered (and
    # checked) with the project's files like the shared one.
    for name in matrix.own_data_profiles if matrix.profile == REFERENCE_PROFILE else ():
        other = load_matrix(matrix.source, name)
        used = {n for v in other.variants.values() for n in (*v.task.train, *v.task.eval)}
        other = dataclasses.replace(other, datasets={n: d for n, d in other.datasets.items() if n in used})
        found = resolve(other, out / other.data_dir)
        problems += found.problems
        if not found.as_is:
            path = f"{other.data_dir.rstrip('/')}/{DATASET_INFO}"
            problems += [line for line in [writable(out, path)] if line]
            files.append(RenderedFile(path, dataset_info_json(other, found.entries), "dataset_info"))
    if problems:
        raise ConfigError(problems)
    if check_only:
        drifted = drifted_files(files, out)
        if drifted:
            raise DriftError(
                "rendered files differ from " + source_name(matrix) + " (run `mprtune render`): " + ", ".join(drifted)
            )
    # Every dataset_info.json has the same text; only the data dir this profile trains from must hold the files.
    # A foreign registry used as it is is checked for the entries the matrix uses.
    text = json.dumps(registry.entries) if registry.as_is else info
    used = {name for v in matrix.variants.values() for name in (*v.task.train, *v.task.eval)}
    errors, warnings = lfcheck.check_dataset_info(
        text, f"{matrix.data_dir}/{DATASET_INFO}", data_dir or out / matrix.data_dir, used
    )
    if lf_check:
        yamls = {file.path: file.text for file in files if file.kind in ("train", "predict")}
        errors += lfcheck.check_yamls(yamls, cache_dir / "lfcheck.json" if cache_dir else None)
    if errors:
        raise ConfigError(errors)
    written = [] if check_only else write_files(files, out)
    return RenderOutcome(written, warnings)
