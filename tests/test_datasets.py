"""Your own data as LLaMA-Factory reads it: formats, imports, a registry never clobbered, checks before launch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.config.entities import Dataset
from mprtune.data.datasets import read_rows, training_data_sha256
from mprtune.data.rows import iter_rows, row_ids
from mprtune.data.sources import RowErrorAt
from mprtune.errors import DataError
from mprtune.launch.jobs import JobSpec, JobStatus
from mprtune.workspace import Workspace

MATRIX = """
data_dir: data
models:
  tiny: {path: .mprtune/models/tiny-llama-a, template: llama3, params: 1.0e6, tiny_seed: 1}
datasets:
  sentiment:
    file: sentiment.jsonl
    columns: {query: null, system: system}
    licence: {name: CC-BY-4.0, url: "https://example.org/licence"}
  cities:
    file: cities.json
    formatting: sharegpt
    columns: {messages: messages, system: sys}
    tags: {role_tag: role, content_tag: content, user_tag: user, assistant_tag: assistant}
  held_out: {file: held_out.jsonl}
tasks:
  mine:
    kind: grammar
    prompt: "Fix: "
    train: [sentiment, cities]
    eval: [held_out]
    cutoff_len: 64
    train_tokens: 1000
recipe: {stage: sft, finetuning_type: lora, bf16: false, max_steps: 2, report_to: none}
hardware: {gpus: [], slots: 1}
variants:
  - {name: v, model: tiny, task: mine}
"""
SENTIMENT = [
    {"instruction": "Classify: great film", "output": "positive", "system": "Answer with one word."},
    {"instruction": "Classify: dull", "output": "negative", "system": "Answer with one word."},
]
CITIES = [
    {
        "sys": "Extract city|date.",
        "messages": [
            {"role": "user", "content": "I fly to Oslo on 3 May."},
            {"role": "assistant", "content": "Oslo|05-03"},
            {"role": "user", "content": "And Rome on 9 June?"},
            {"role": "assistant", "content": "Rome|06-09"},
        ],
    }
]
HELD_OUT = [{"id": "h1", "instruction": "Fix: a error", "input": "", "output": "an error", "source": "a error"}]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "mprtune.yaml").write_text(MATRIX)
    (root / "data" / "sentiment.jsonl").write_text(jsonl(SENTIMENT))
    (root / "data" / "cities.json").write_text(json.dumps(CITIES, indent=2))
    (root / "data" / "held_out.jsonl").write_text(jsonl(HELD_OUT))
    monkeypatch.setenv("MPRTUNE_PROJECT_DIR", str(root))
    monkeypatch.setenv("MPRTUNE_RUNS_DIR", str(tmp_path / "runs"))
    return root


def run(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("Error: ")]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- render


def test_render_writes_the_entries_llamafactory_reads(project: Path) -> None:
    code, lines = run("render", "--no-lf-check")
    assert code == 0, lines
    info = json.loads((project / "data" / "dataset_info.json").read_text())
    assert info["sentiment"] == {
        "file_name": "sentiment.jsonl",
        "formatting": "alpaca",
        "columns": {"prompt": "instruction", "response": "output", "system": "system"},
    }
    assert info["cities"]["formatting"] == "sharegpt"
    assert info["cities"]["columns"] == {"messages": "messages", "system": "sys"}
    # A partial `tags` mapping would reset LLaMA-Factory's other tags to None: all seven are spelled out.
    assert info["cities"]["tags"]["system_tag"] == "system" and info["cities"]["tags"]["role_tag"] == "role"
    assert not (project / "data" / "samples").exists(), "no samples mirror outside the demo/tiny profiles"
    # LLaMA-Factory's own parser reads the entries as declared.
    from llamafactory.data.parser import get_dataset_list

    attrs = {a.dataset_name: a for a in get_dataset_list(["sentiment", "cities"], str(project / "data"))}
    assert (attrs["sentiment.jsonl"].prompt, attrs["sentiment.jsonl"].query) == ("instruction", None)
    assert attrs["sentiment.jsonl"].system == "system"
    cities = attrs["cities.json"]
    assert (cities.formatting, cities.messages, cities.system) == ("sharegpt", "messages", "sys")
    assert (cities.role_tag, cities.content_tag, cities.user_tag, cities.assistant_tag) == (
        "role",
        "content",
        "user",
        "assistant",
    )


def test_render_never_overwrites_a_foreign_dataset_info(project: Path) -> None:
    foreign = b'{"their_hub": {"hf_hub_url": "org/theirs"}, "sentiment": {"file_name": "sentiment.jsonl"}}\n'
    (project / "data" / "dataset_info.json").write_bytes(foreign)
    before = tree(project)
    code, lines = run("render", "--no-lf-check")
    assert code == 2 and len(errors(lines)) == 1, lines
    assert "not written by mprtune" in lines[0] and "dataset_info: dataset_info.json" in lines[0]
    assert tree(project) == before, "nothing written, the foreign file byte-identical"


def test_a_matrix_importing_every_dataset_from_the_foreign_registry_uses_it_as_it_is(project: Path) -> None:
    foreign = json.dumps(
        {
            "sentiment": {"file_name": "sentiment.jsonl", "columns": {"prompt": "instruction", "response": "output"}},
            "held_out": {"file_name": "held_out.jsonl"},
            "their_hub": {"hf_hub_url": "org/theirs"},
        }
    ).encode()
    (project / "data" / "dataset_info.json").write_bytes(foreign)
    text = (project / "mprtune.yaml").read_text()
    start, end = text.index("datasets:"), text.index("tasks:")
    imported = (
        "datasets:\n  sentiment: {dataset_info: dataset_info.json}\n  held_out: {dataset_info: dataset_info.json}\n"
    )
    (project / "mprtune.yaml").write_text(
        text[:start] + imported + text[end:].replace("[sentiment, cities]", "[sentiment]")
    )
    code, lines = run("render", "--no-lf-check")
    assert code == 0, lines
    assert (project / "data" / "dataset_info.json").read_bytes() == foreign
    cfg = yaml.safe_load((project / "llamafactory_configs" / "v.yaml").read_text())
    assert cfg["dataset"] == "sentiment"
    rows = read_rows(Workspace.open(), "sentiment")
    assert rows[0].conversation.user == "Classify: great film" and rows[0].conversation.system == ""


def test_an_entry_from_another_folder_is_copied_with_its_file_rewritten(project: Path) -> None:
    vendor = project / "data" / "vendor"
    vendor.mkdir()
    (vendor / "trips.json").write_text(json.dumps(CITIES))
    entry = {
        "file_name": "trips.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "system": "sys"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }
    (vendor / "dataset_info.json").write_text(json.dumps({"trips": entry}))
    text = (project / "mprtune.yaml").read_text()
    start, end = text.index("  cities:"), text.index("  held_out:")
    (project / "mprtune.yaml").write_text(
        text[:start] + "  cities: {dataset_info: vendor/dataset_info.json, entry: trips}\n" + text[end:]
    )
    code, lines = run("render", "--no-lf-check")
    assert code == 0, lines
    info = json.loads((project / "data" / "dataset_info.json").read_text())
    assert info["cities"] == {**entry, "file_name": "vendor/trips.json"}
    # The entry's `tags` omit system_tag: LLaMA-Factory then has none, and so does mprtune's reader.
    (row,) = read_rows(Workspace.open(), "cities")
    assert row.conversation.user == "And Rome on 9 June?" and row.conversation.system == "Extract city|date."


@pytest.mark.parametrize(
    "dataset,expect",
    [
        ("{dataset_info: vendor/none.json}", "datasets.cities.dataset_info: data/vendor/none.json: file not found"),
        ("{dataset_info: dataset_info.json, entry: x}", "dataset_info.json: file not found"),
        ("{dataset_info: ../x/dataset_info.json}", "expected a .json file inside the data dir"),
        (
            "{file: cities.json, formating: sharegpt}",
            "datasets.cities.formating: unknown key; did you mean 'formatting'?",
        ),
        ("{file: cities.json, formatting: sharegpt, tags: {role: x}}", "did you mean 'role_tag'?"),
        ("{file: cities.json, hf_hub_url: org/x}", "give exactly one of file, hf_hub_url, dataset_info"),
        ("{file: /etc/passwd}", "datasets.cities.file: must be a relative path inside the data dir"),
        ("{hf_hub_url: 'bad id!'}", "datasets.cities.hf_hub_url: expected a Hub dataset id"),
        ("{file: cities.json, split: test}", "only a Hub dataset (hf_hub_url) has subsets and splits"),
        (
            "{file: cities.json, licence: {name: MIT, urll: x}}",
            "datasets.cities.licence.urll: unknown key; did you mean 'url'?",
        ),
        ("{file: cities.json, formatting: openai}", "datasets.cities.formatting: expected one of alpaca, sharegpt"),
        ("{dataset_info: dataset_info.json, formatting: sharegpt}", "an imported entry is used as it is"),
    ],
)
def test_bad_dataset_entries_are_one_line_each_and_nothing_is_written(project: Path, dataset: str, expect: str) -> None:
    text = (project / "mprtune.yaml").read_text()
    start, end = text.index("  cities:"), text.index("  held_out:")
    (project / "mprtune.yaml").write_text(text[:start] + f"  cities: {dataset}\n" + text[end:])
    before = tree(project)
    code, lines = run("render", "--no-lf-check")
    assert code == 2, lines
    assert len(errors(lines)) == 1 and expect in lines[0], lines
    assert tree(project) == before


# --------------------------------------------------------------------------- reading rows


def write(folder: Path, name: str, data: bytes | str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def test_sharegpt_rows_give_system_history_and_the_last_turns(tmp_path: Path) -> None:
    turns = [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "q1"},
        {"from": "gpt", "value": "a1"},
        {"from": "human", "value": "q2"},
        {"from": "gpt", "value": "a2"},
    ]
    write(tmp_path, "chat.jsonl", "\ufeff" + json.dumps({"conversations": turns}) + "\n")
    (row,) = list(iter_rows(tmp_path, Dataset("chat", "chat.jsonl", formatting="sharegpt")))
    assert not isinstance(row, RowErrorAt)
    assert row.where.endswith("chat.jsonl:1")
    c = row.conversation
    assert (c.system, c.history, c.user, c.assistant) == ("Be brief.", (("q1", "a1"),), "q2", "a2")


def test_alpaca_rows_join_instruction_and_input_with_system_and_history(tmp_path: Path) -> None:
    row = {"instruction": "Translate", "input": "chat", "output": "cat", "sys": "S", "hist": [["hi", "hello"]]}
    write(tmp_path, "a.jsonl", json.dumps(row) + "\n")
    ds = Dataset("a", "a.jsonl", columns={"system": "sys", "history": "hist"})
    (got,) = list(iter_rows(tmp_path, ds))
    assert not isinstance(got, RowErrorAt)
    assert got.conversation.user == "Translate\nchat" and got.conversation.system == "S"
    assert got.conversation.history == (("hi", "hello"),)


def test_a_json_array_names_the_line_each_row_starts_on_and_a_folder_reads_every_file(tmp_path: Path) -> None:
    array = '[\n  {"instruction": "a", "output": "b"},\n\n  {"instruction": "c",\n   "output": "d"},\n  [1]\n]\n'
    write(tmp_path, "d/part1.json", array)
    write(tmp_path, "d/part2.json", json.dumps([{"instruction": "e", "output": "f"}]))
    got = list(iter_rows(tmp_path, Dataset("d", "d")))
    wheres = {r.where.split("/")[-1]: r for r in got}
    assert set(wheres) == {"part1.json:2", "part1.json:4", "part1.json:6", "part2.json:1"}
    assert (
        isinstance(wheres["part1.json:6"], RowErrorAt)
        and "expected a JSON object, got list" in wheres["part1.json:6"].message
    )
    assert wheres["part1.json:4"].conversation.assistant == "d"


@pytest.mark.parametrize(
    "name,data,formatting,expect",
    [
        ("x.json", '{\n "instruction": "a",\n "output": "b"\n}\n', "alpaca", "x.json:1: expected a JSON array of rows"),
        (
            "x.jsonl",
            b'{"instruction": "caf\xe9", "output": "b"}\n',
            "alpaca",
            "x.jsonl:1: not UTF-8 text (byte offset 20 ",
        ),
        ("x.json", b'[{"instruction": "a", "output": "\xff"}]', "alpaca", "x.json:1: not UTF-8 text (byte offset 33"),
        (
            "x.jsonl",
            '{"conversations": [{"from": "human", "value": "q"}]}\n',
            "sharegpt",
            "x.jsonl:1: no assistant turn after the last user turn",
        ),
        (
            "x.jsonl",
            '{"conversations": [{"from": "user", "value": "q"}, {"from": "gpt", "value": "a"}]}\n',
            "sharegpt",
            "x.jsonl:1: turn 1: unknown role 'user'",
        ),
        (
            "x.jsonl",
            '{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}\n',
            "alpaca",
            "x.jsonl:1: no 'instruction' field (datasets.x.columns.prompt); the row looks like sharegpt",
        ),
        ("x.jsonl", '{"instruction": "q", "output": "a"}\n', "sharegpt", "looks like alpaca"),
        ("x.jsonl", '{"instruction": "q"}\n', "alpaca", "x.jsonl:1: no 'output' field (datasets.x.columns.response)"),
    ],
)
def test_rows_llamafactory_cannot_use_name_file_line_and_what(
    tmp_path: Path, name: str, data: str | bytes, formatting: str, expect: str
) -> None:
    write(tmp_path, name, data)
    bad = [r for r in iter_rows(tmp_path, Dataset("x", name, formatting=formatting)) if isinstance(r, RowErrorAt)]
    assert bad and expect in f"{bad[0].where}: {bad[0].message}", bad


def test_a_hub_dataset_offline_is_one_line_that_says_to_use_a_local_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(DataError) as caught:
        list(iter_rows(tmp_path, Dataset("hub", hf_hub_url="org/not-cached", split="train")))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("datasets.hub: ")
    assert "offline" in message and "declare it with `file:`" in message


def test_row_ids_are_the_id_field_or_a_content_hash_and_duplicates_differ(tmp_path: Path) -> None:
    rows = [
        {"id": 7, "instruction": "a", "output": "b"},
        {"instruction": "a", "output": "b"},
        {"instruction": "a", "output": "b"},
    ]
    write(tmp_path, "r.jsonl", jsonl(rows))
    got = [r for r in iter_rows(tmp_path, Dataset("r", "r.jsonl")) if not isinstance(r, RowErrorAt)]
    ids = row_ids(Dataset("r", "r.jsonl"), got)
    assert ids[0] == "7" and len(ids[1]) == 12 and ids[2] == ids[1] + "~2"
    assert row_ids(Dataset("r", "r.jsonl"), got) == ids, "stable"


# --------------------------------------------------------------------------- before launch


def test_plan_and_dry_run_refuse_sharegpt_declared_as_alpaca_with_every_problem(project: Path) -> None:
    text = (project / "mprtune.yaml").read_text()
    (project / "mprtune.yaml").write_text(
        text.replace("    formatting: sharegpt\n", "")
        .replace("    tags: {role_tag: role, content_tag: content, user_tag: user, assistant_tag: assistant}\n", "")
        .replace("columns: {messages: messages, system: sys}", "columns: {system: sys}")
    )
    (project / "data" / "sentiment.jsonl").write_text(jsonl([*SENTIMENT, {"instruction": "no answer"}]))
    assert run("render", "--no-lf-check")[0] == 0
    for command in (("plan",), ("train", "--dry-run", "v")):
        code, lines = run(*command)
        problems = errors(lines)
        assert code == 2, lines
        assert any("cities.json:2: no 'instruction' field" in p and "formatting: sharegpt" in p for p in problems)
        assert any("sentiment.jsonl:3: no 'output' field" in p for p in problems), problems
    assert not (project.parent / "runs").exists() or not any((project.parent / "runs").rglob("job.yaml"))


def test_an_empty_training_file_is_caught_before_launch(project: Path) -> None:
    assert run("render", "--no-lf-check")[0] == 0
    (project / "data" / "cities.json").write_text("[]\n")
    code, lines = run("plan")
    assert code == 2 and errors(lines) == [
        f"Error: {project / 'data' / 'cities.json'}: no rows (datasets.cities); "
        "LLaMA-Factory cannot use an empty dataset"
    ], lines


def test_a_declared_column_no_row_has_is_caught_before_launch(project: Path) -> None:
    text = (project / "mprtune.yaml").read_text()
    (project / "mprtune.yaml").write_text(
        text.replace("columns: {query: null, system: system}", "columns: {system: system}")
    )
    assert run("render", "--no-lf-check")[0] == 0
    code, lines = run("plan")
    assert code == 2 and any("no row has 'input' (datasets.sentiment.columns.query)" in p for p in errors(lines)), lines


def test_edited_training_data_is_reported_as_changed_and_old_status_files_are_not(project: Path) -> None:
    assert run("render", "--no-lf-check")[0] == 0
    ws = Workspace.open()
    folder = ws.run_dir("v")
    folder.mkdir(parents=True)
    (folder / "train_results.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    JobStatus("v", "train", state="done").write(folder / "mprtune-status.json")  # before data fingerprints
    code, lines = run("plan")
    assert code == 0 and not any("changed since" in line for line in lines), lines
    status = JobStatus.read(folder / "mprtune-status.json")
    assert status is not None
    status.data_sha256 = training_data_sha256(ws, ["sentiment", "cities"])
    status.write(folder / "mprtune-status.json")
    assert not any("changed since" in line for line in run("plan")[1])
    (project / "data" / "sentiment.jsonl").write_text(jsonl(SENTIMENT[:1]))
    code, lines = run("plan")
    assert code == 0 and any("training data changed since: NOT retrained" in line for line in lines), lines


def test_the_queue_records_the_data_fingerprint_and_never_retries_a_data_error(tmp_path: Path) -> None:
    from mprtune.launch.backends.local import LocalExecutor
    from mprtune.launch.queue import run_queue
    from mprtune.launch.state import classify_failure, retryable

    log = (
        'File "/x/llamafactory/data/converter.py", line 96, in __call__\n'
        "    if self.dataset_attr.prompt and example[self.dataset_attr.prompt]:\nKeyError: 'instruction'\n"
    )
    reason = classify_failure(1, log)
    assert reason.startswith("data error") and "KeyError: 'instruction'" in reason and not retryable(reason)
    assert not retryable(classify_failure(1, "ValueError: Undefined dataset x in dataset_info.json."))
    assert retryable(classify_failure(-9, "")) and retryable("exit code 3")
    script = f"import sys; sys.stderr.write({log!r}); raise SystemExit(1)"
    spec = JobSpec(
        "bad", "train", tmp_path / "bad", (sys.executable, "-c", script), {}, tmp_path, "x: 1\n", data_sha256="abc"
    )
    final = run_queue([spec], LocalExecutor(cpu_slots=1), retries=3)
    assert final["bad"].state == "failed" and final["bad"].attempt == 1
    assert JobStatus.read(tmp_path / "bad" / "mprtune-status.json").data_sha256 == "abc"  # type: ignore[union-attr]


@pytest.mark.slow
def test_llamafactory_trains_on_a_sharegpt_dataset_with_a_system_field(project: Path, tiny_models: Path) -> None:
    """End to end: the rendered registry makes LLaMA-Factory build the prompt with the row's system text."""
    import shutil

    shutil.copytree(tiny_models, project / ".mprtune" / "models")
    text = (project / "mprtune.yaml").read_text().replace("train: [sentiment, cities]", "train: [cities]")
    text = text.replace("cutoff_len: 64", "cutoff_len: 512")  # the whole conversation, not cut from the right
    (project / "mprtune.yaml").write_text(
        text.replace("max_steps: 2,", "max_steps: 2, logging_steps: 1, save_steps: 2,")
    )
    assert run("render", "--no-lf-check")[0] == 0
    code, lines = run("train", "v", "--slots", "1", "--retries", "0")
    run_dir = project.parent / "runs" / "v"
    assert code == 0, lines + [(run_dir / "stderr.log").read_text()[-2000:]]
    assert (run_dir / "adapter_model.safetensors").is_file()
    stdout = (run_dir / "stdout.log").read_text()
    inputs = stdout[stdout.index("inputs:") :]
    assert "Extract city|date." in inputs and "I fly to Oslo on 3 May." in inputs and "Rome|06-09" in inputs
    status = JobStatus.read(run_dir / "mprtune-status.json")
    assert status is not None and status.data_sha256 == training_data_sha256(Workspace.open(), ["cities"])


def test_the_model_card_states_the_licence_the_matrix_gives(project: Path) -> None:
    from mprtune.serve.card import data_rows

    ws = Workspace.open()
    rows = {r["dataset"]: r for r in data_rows(ws, ws.matrix.variants["v"])}
    licence = rows["sentiment"]["licence"]
    assert (licence.licence, licence.url, licence.restricted) == ("CC-BY-4.0", "https://example.org/licence", False)
    assert rows["cities"]["licence"].licence.startswith("unknown")


def test_plan_warns_that_a_hub_training_dataset_needs_the_network(project: Path) -> None:
    text = (project / "mprtune.yaml").read_text()
    text = text.replace("  held_out:", "  reviews: {hf_hub_url: org/reviews, split: train}\n  held_out:")
    (project / "mprtune.yaml").write_text(text.replace("[sentiment, cities]", "[sentiment, cities, reviews]"))
    assert run("render", "--no-lf-check")[0] == 0
    code, lines = run("plan")  # conftest turns offline mode on for every test
    assert code == 0 and any(x.startswith("Warning: offline mode is on") and "reviews" in x for x in lines), lines
