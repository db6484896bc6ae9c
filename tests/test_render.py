"""`mprtune render`: the reference recipe, determinism, quoting, --check and profiles."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.config.matrix import load_matrix
from mprtune.config.render import render_matrix, yaml_scalar

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_VARIANTS = [
    f"{m}_{t}_lora"
    for m in ("llama32_3b", "llama31_8b")
    for t in ("grammar", "paraphrase", "knowledge", "paws_only", "qqp_only")
]


def render(*args: str) -> CliRunner.invoke:
    return CliRunner().invoke(cli, ["render", "--no-lf-check", *args])


def test_render_writes_ten_training_yamls_with_the_reference_recipe(tmp_path: Path) -> None:
    result = render("--config", str(ROOT / "mprtune.yaml"), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = sorted(p.stem for p in (tmp_path / "llamafactory_configs").glob("*.yaml"))
    assert written == sorted(REFERENCE_VARIANTS)
    for name in REFERENCE_VARIANTS:
        cfg = yaml.safe_load((tmp_path / "llamafactory_configs" / f"{name}.yaml").read_text())
        assert cfg["finetuning_type"] == "lora"
        assert (cfg["lora_rank"], cfg["lora_alpha"]) == (16, 32)
        assert cfg["lora_target"] == "q_proj,k_proj,v_proj,o_proj"
        assert cfg["learning_rate"] == 5.0e-5 and isinstance(cfg["learning_rate"], float)
        assert (cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"]) == (4, 4)
        assert cfg["num_train_epochs"] == 3 and cfg["bf16"] is True
        assert cfg["template"] == "llama3" and cfg["report_to"] == "wandb"
        assert cfg["run_name"] == name and cfg["output_dir"] == f"runs/{name}"
        assert cfg["overwrite_output_dir"] is False and cfg["plot_loss"] is True
        assert cfg["save_steps"] > 0 and cfg["save_total_limit"] >= 2 and cfg["logging_steps"] > 0
        assert cfg["cutoff_len"] > 0 and isinstance(cfg["seed"], int)
        assert not any(str(v).startswith("/") for v in cfg.values()), "no absolute paths in committed files"
    model = yaml.safe_load((tmp_path / "llamafactory_configs/llama31_8b_qqp_only_lora.yaml").read_text())
    assert model["model_name_or_path"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert model["dataset"] == "qqp_train"
    info = json.loads((tmp_path / "data" / "dataset_info.json").read_text())
    assert info["jfleg_train"]["file_name"] == "jfleg_train.jsonl"
    assert info["jfleg_train"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}


def test_prediction_configs_are_greedy_and_share_baselines(tmp_path: Path) -> None:
    assert render("--config", str(ROOT / "mprtune.yaml"), "--out", str(tmp_path)).exit_code == 0
    predict = tmp_path / "llamafactory_configs" / "predict"
    tuned = yaml.safe_load((predict / "llama32_3b_grammar_lora.yaml").read_text())
    base = yaml.safe_load(next(predict.glob("base__llama32_3b__jfleg_eval__*.yaml")).read_text())
    assert tuned["adapter_name_or_path"] == "runs/llama32_3b_grammar_lora"
    assert "adapter_name_or_path" not in base
    for cfg in (tuned, base):
        assert cfg["do_predict"] is True and cfg["predict_with_generate"] is True
        assert cfg["do_sample"] is False and cfg["eval_dataset"] == "jfleg_eval"
    # Everything but the adapter and output dir is identical: same prompts for both.
    strip = lambda c: {k: v for k, v in c.items() if k not in ("adapter_name_or_path", "output_dir")}
    assert strip(tuned) == strip(base)
    assert len(list(predict.glob("base__*.yaml"))) == 10  # 2 models x 5 distinct eval sets


def test_render_is_deterministic_and_headed() -> None:
    matrix = load_matrix(ROOT / "mprtune.yaml")
    first, second = render_matrix(matrix), render_matrix(load_matrix(ROOT / "mprtune.yaml"))
    assert [(f.path, f.text) for f in first] == [(f.path, f.text) for f in second]
    train = next(f for f in first if f.kind == "train")
    assert train.text.startswith("# Rendered by `mprtune render` from mprtune.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "a: b",
        "x # not a comment",
        'it\'s "quoted"',
        "on",
        "yes",
        "no",
        "line1\nline2",
        "null",
        "123",
        "-1.5e3",
        "[list]",
        "{map}",
        "tab\there",
        "ü: ©",
    ],
)
def test_yaml_scalar_round_trips_any_string(text: str) -> None:
    assert yaml.safe_load(f"key: {yaml_scalar(text)}") == {"key": text}


@pytest.mark.parametrize("value", [5.0e-5, 1e-3, 0.05, 3.0, 1e20, 2.5e-12, 42, True, False])
def test_yaml_scalar_keeps_numbers_numbers(value: object) -> None:
    parsed = yaml.safe_load(f"key: {yaml_scalar(value)}")["key"]
    assert parsed == value and type(parsed) is type(value)


def test_hostile_strings_round_trip_through_the_rendered_yaml(tmp_path: Path) -> None:
    nasty = "models/x: #1 \"on\" 'yes' ${x}\nno"
    text = (
        (ROOT / "mprtune.yaml")
        .read_text()
        .replace("path: meta-llama/Llama-3.2-3B-Instruct", f"path: {json.dumps(nasty)}")
    )
    (tmp_path / "mprtune.yaml").write_text(text)
    assert render("--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path)).exit_code == 0
    rendered = tmp_path / "llamafactory_configs/llama32_3b_grammar_lora.yaml"
    assert yaml.safe_load(rendered.read_text())["model_name_or_path"] == nasty
    # LLaMA-Factory itself reads configs with OmegaConf: the string must survive that loader too.
    omegaconf = pytest.importorskip("omegaconf")
    assert omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.load(rendered))["model_name_or_path"] == nasty


def test_check_passes_on_the_committed_configs_and_fails_after_an_edit(tmp_path: Path) -> None:
    assert render("--check", "--config", str(ROOT / "mprtune.yaml"), "--out", str(ROOT)).exit_code == 0
    (tmp_path / "mprtune.yaml").write_text((ROOT / "mprtune.yaml").read_text())
    assert render("--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path)).exit_code == 0
    assert render("--check", "--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path)).exit_code == 0
    edited = (tmp_path / "mprtune.yaml").read_text().replace("lora_rank: 16", "lora_rank: 8")
    (tmp_path / "mprtune.yaml").write_text(edited)
    before = {p: p.read_bytes() for p in (tmp_path / "llamafactory_configs").glob("*.yaml")}
    result = render("--check", "--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "llamafactory_configs/llama32_3b_grammar_lora.yaml" in result.output
    assert before == {p: p.read_bytes() for p in (tmp_path / "llamafactory_configs").glob("*.yaml")}


def test_check_reports_stale_configs_of_removed_variants(tmp_path: Path) -> None:
    (tmp_path / "mprtune.yaml").write_text((ROOT / "mprtune.yaml").read_text())
    assert render("--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path)).exit_code == 0
    (tmp_path / "llamafactory_configs" / "old_variant.yaml").write_text("stage: sft\n")
    result = render("--check", "--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path))
    assert result.exit_code == 1 and "old_variant.yaml (stale" in result.output


def test_demo_profile_never_touches_the_committed_configs(project) -> None:
    committed = {p: p.read_bytes() for p in (project.root / "llamafactory_configs").rglob("*.yaml")}
    result = CliRunner().invoke(cli, ["render", "--no-lf-check", "--profile", "tiny"])
    assert result.exit_code == 0, result.output
    assert committed == {p: p.read_bytes() for p in (project.root / "llamafactory_configs").rglob("*.yaml")}
    demo = project.root / ".mprtune/profiles/tiny/llamafactory_configs/llama32_3b_grammar_lora.yaml"
    cfg = yaml.safe_load(demo.read_text())
    assert cfg["model_name_or_path"] == ".mprtune/models/tiny-llama-a"
    assert cfg["bf16"] is False and cfg["max_steps"] <= 50 and cfg["dataset_dir"] == "data/samples"
    assert cfg["output_dir"] == "runs-tiny/llama32_3b_grammar_lora"


def test_profile_from_environment(project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPRTUNE_PROFILE", "tiny")
    assert CliRunner().invoke(cli, ["render", "--no-lf-check"]).exit_code == 0
    assert (project.root / ".mprtune/profiles/tiny/llamafactory_configs").is_dir()


def test_deepspeed_json_rendered_for_opted_in_variants(tmp_path: Path) -> None:
    text = (
        (ROOT / "mprtune.yaml")
        .read_text()
        .replace(
            "{name: llama31_8b_grammar_lora, model: llama31_8b, task: grammar}",
            "{name: llama31_8b_grammar_lora, model: llama31_8b, task: grammar, deepspeed: zero3}",
        )
    )
    (tmp_path / "mprtune.yaml").write_text(text)
    assert render("--config", str(tmp_path / "mprtune.yaml"), "--out", str(tmp_path)).exit_code == 0
    cfg = yaml.safe_load((tmp_path / "llamafactory_configs/llama31_8b_grammar_lora.yaml").read_text())
    assert cfg["deepspeed"] == "llamafactory_configs/deepspeed/ds_zero3.json"
    ds = json.loads((tmp_path / cfg["deepspeed"]).read_text())
    assert ds["zero_optimization"]["stage"] == 3
    assert not (tmp_path / "llamafactory_configs/deepspeed/ds_zero2.json").exists()


def test_a_shared_baseline_is_keyed_on_every_generation_setting_not_on_variant_order() -> None:
    from mprtune.config.render import baseline_key, predict_specs

    matrix = load_matrix(ROOT / "mprtune.yaml")
    grammar = matrix.variants["llama32_3b_grammar_lora"]
    longer = dataclasses.replace(grammar, name="long_cutoff_lora", recipe={**grammar.recipe, "cutoff_len": 512})
    assert baseline_key(matrix, grammar) != baseline_key(matrix, longer), "cutoff_len changes what is generated"
    fp32 = dataclasses.replace(grammar, name="fp32_lora", recipe={**grammar.recipe, "bf16": False})
    assert baseline_key(matrix, grammar) != baseline_key(matrix, fp32), "dtype changes what is generated"
    relr = dataclasses.replace(grammar, name="lr_lora", recipe={**grammar.recipe, "learning_rate": 1e-4})
    assert baseline_key(matrix, grammar) == baseline_key(matrix, relr), "training-only keys share the baseline"
    forward = {s.key: s.with_adapter for s in predict_specs(matrix, [grammar, longer])}
    backward = {s.key: s.with_adapter for s in predict_specs(matrix, [longer, grammar])}
    assert forward == backward and sum(not adapter for adapter in forward.values()) == 2


def test_every_recipe_key_the_matrix_accepts_reaches_the_training_yaml() -> None:
    from mprtune.config.matrix import RECIPE_TYPES
    from mprtune.config.render import RENDERED_APART, training_yaml

    matrix = load_matrix(ROOT / "mprtune.yaml")
    variant = matrix.variants["llama32_3b_grammar_lora"]
    samples = {str: "x", int: 3, bool: True, list: ["a"], dict: {}}
    recipe = dict(variant.recipe)
    for key, kind in RECIPE_TYPES.items():
        if key in RENDERED_APART:
            continue
        recipe[key] = samples[kind[0] if isinstance(kind, tuple) else kind] if key not in recipe else recipe[key]
    recipe.update(weight_decay=0.01, fp16=False)
    rendered = yaml.safe_load(training_yaml(matrix, dataclasses.replace(variant, recipe=recipe)))
    missing = [key for key in recipe if key not in RENDERED_APART and key not in rendered]
    assert not missing, f"validated recipe keys silently dropped: {missing}"
    assert rendered["weight_decay"] == 0.01 and rendered["fp16"] is False
