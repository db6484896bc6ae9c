"""`mprtune serve`: LLaMA-Factory's OpenAI-compatible server for a variant, checked against `compare`.

The slow tests train the tiny `fit_lora` variant of test_compare (its answers are real sentences
with " ." tokens, so decoding differences would show), compare it, then talk to a real
`mprtune serve` process over loopback with the real `openai` client. One server per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, Project
from test_compare import FIT_PAIRS, add_fit_task

from mprtune.cli import cli
from mprtune.errors import MprtuneError
from mprtune.serve.app import request_problem
from mprtune.workspace import Workspace

VARIANT = "fit_lora"
KEY = "test-key-7f3a9c0e1d"  # must never appear in a file the server or mprtune writes


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


# --- fast: request guard, options, configuration, bad input -----------------------------------------


def test_request_guard_refuses_empty_messages_and_absurd_max_tokens() -> None:
    assert "non-empty list" in request_problem({"model": "m", "messages": []}, 4096)
    assert "non-empty list" in request_problem({"model": "m"}, 4096)
    assert "messages[0]" in request_problem({"messages": ["hi"]}, 4096)
    for bad in (0, -5, 10**9, 1.5, True, "12"):
        problem = request_problem({"messages": [{"role": "user", "content": "x"}], "max_tokens": bad}, 4096)
        assert problem and "1 to 4096" in problem, bad
    body = {"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 7}
    assert request_problem(body, 4096) is None and body["max_tokens"] == 7  # the newer OpenAI name is honoured
    assert request_problem({"messages": [{"role": "user", "content": "x"}], "max_tokens": 4096}, 4096) is None


def test_binding_beyond_loopback_without_a_key_is_refused(project: Project) -> None:
    line = one_line_error(invoke("serve", "llama32_3b_grammar_lora", "--host", "0.0.0.0"))
    assert "--host 0.0.0.0" in line and "--api-key" in line


def test_unknown_and_untrained_variants_are_one_line_errors(project: Project) -> None:
    line = one_line_error(invoke("serve", "nope", "--profile", "tiny"))
    assert "unknown variant 'nope'" in line
    line = one_line_error(invoke("serve", "llama32_3b_grammar_lora", "--profile", "tiny"))
    assert "has not finished training" in line and "mprtune train llama32_3b_grammar_lora" in line


def fake_finished_run(project: Project, variant: str = "llama32_3b_grammar_lora") -> Path:
    """Files that make a run look trained (fault injection: nothing loads them in these tests)."""
    run = project.root / "runs-tiny" / variant
    run.mkdir(parents=True)
    for name in ("train_results.json", "adapter_model.safetensors", "adapter_config.json"):
        (run / name).write_text("{}")
    return run


def test_missing_adapter_and_missing_compare_are_one_line_errors(project: Project) -> None:
    run = fake_finished_run(project)
    line = one_line_error(invoke("serve", "llama32_3b_grammar_lora", "--profile", "tiny", "--check"))
    assert "no predictions from `compare`" in line and "mprtune compare llama32_3b_grammar_lora" in line
    (run / "adapter_config.json").unlink()
    line = one_line_error(invoke("serve", "llama32_3b_grammar_lora", "--profile", "tiny"))
    assert "adapter_config.json is missing" in line


def test_port_in_use_is_found_before_any_model_loads(project: Project) -> None:
    run = fake_finished_run(project)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        line = one_line_error(invoke("serve", "llama32_3b_grammar_lora", "--profile", "tiny", "--port", str(port)))
    assert f"--port {port}: already in use" in line and "--port 0" in line
    assert not (run / "serve").exists()  # refused before a config was written or a process spawned


def test_api_config_carries_compare_generation_settings(project: Project) -> None:
    from mprtune.config.matrix import load_matrix
    from mprtune.serve.target import api_yaml, resolve_target

    for profile, tokens, dtype in (("reference", 128, "bfloat16"), ("tiny", 48, "auto")):
        matrix = load_matrix(project.matrix, profile)
        target = resolve_target(
            Workspace(matrix, project.root, project.root / "runs"), "llama32_3b_grammar_lora", base=True
        )
        config = yaml.safe_load(api_yaml(target))
        assert config["do_sample"] is False and config["max_new_tokens"] == tokens
        assert config["infer_dtype"] == dtype and config["template"] == "llama3"
        assert "adapter_name_or_path" not in config and target.served_name.startswith("base__llama32_3b__jfleg_eval__")
        assert not target.compared


def test_model_card_warns_about_non_commercial_grammar_data_only(project: Project) -> None:
    from mprtune.serve.card import model_card

    ws = Workspace.open(project.matrix, "tiny")
    reports = project.root / "reports"
    grammar = model_card(ws, "llama32_3b_grammar_lora", reports)
    assert "Warning: non-commercial data" in grammar and "CC BY-NC-SA 4.0" in grammar
    assert "No comparison yet" in grammar and "mprtune serve llama32_3b_grammar_lora --profile tiny" in grammar
    front = yaml.safe_load(grammar.split("---\n")[1])
    assert front["library_name"] == "peft" and "grammar" in front["tags"]
    knowledge = model_card(ws, "llama32_3b_knowledge_lora", reports)
    assert "non-commercial data" not in knowledge and "MIT" in knowledge and "CC BY-SA" in knowledge
    paraphrase = model_card(ws, "llama32_3b_paraphrase_lora", reports)
    assert "Warning: non-commercial data" in paraphrase and "Quora" in paraphrase


@pytest.mark.slow
def test_a_server_that_dies_while_loading_is_one_error_with_its_log(tiny_project: Project) -> None:
    run = fake_finished_run(tiny_project)  # adapter files that are not an adapter
    result = invoke("serve", "llama32_3b_grammar_lora", "--profile", "tiny", "--port", "0")
    line = one_line_error(result)
    assert "exited with code" in line and "while loading" in line and str(run / "serve/tuned/server.log") in line
    config = yaml.safe_load((run / "serve/tuned/api.yaml").read_text())
    assert config["adapter_name_or_path"] == str(run) and config["model_name_or_path"].endswith("tiny-llama-a")


# --- slow: a trained, compared tiny variant behind a real server --------------------------------------


@dataclass
class Compared:
    root: Path
    runs: Path
    env: dict[str, str]
    report: Path

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mprtune", *args, "--profile", "tiny"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stored(self) -> list[str]:
        path = self.runs / VARIANT / "predict" / "generated_predictions.jsonl"
        return [json.loads(line)["predict"].strip() for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Compared:
    """fit_lora trained (200 tiny steps) and compared on its 8 rows, once per module."""
    root = tmp_path_factory.mktemp("serve") / "project"
    root.mkdir()
    shutil.copy(ROOT / "mprtune.yaml", root / "mprtune.yaml")
    shutil.copytree(ROOT / "data" / "samples", root / "data" / "samples")
    shutil.copytree(ROOT / "llamafactory_configs", root / "llamafactory_configs")
    shutil.copy(ROOT / "data" / "dataset_info.json", root / "data" / "dataset_info.json")
    shutil.copytree(tiny_models, root / ".mprtune" / "models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPRTUNE_PROJECT_DIR", str(root))
        add_fit_task(Project(root, root / "mprtune.yaml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPRTUNE_", "API_"))}
    env.update(
        MPRTUNE_PROJECT_DIR=str(root),
        MPRTUNE_CACHE_DIR=str(root / ".cache"),
        WANDB_MODE="offline",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        DISABLE_VERSION_CHECK="1",
    )
    project = Compared(root, root / "runs-tiny", env, root)
    trained = project.cli("train", "--slots", "1", VARIANT)
    assert trained.returncode == 0, trained.stderr[-3000:]
    done = project.cli("compare", "--slots", "2", VARIANT)
    assert done.returncode == 0, done.stderr[-3000:]
    project.report = Path(done.stdout.strip().splitlines()[-1].split("Report: ")[1]).parent
    return project


@dataclass
class Served:
    process: subprocess.Popen
    base_url: str
    server_pid: int
    output: list[str]


@pytest.fixture(scope="module")
def served(compared: Compared):
    """`mprtune serve fit_lora --port 0` with a key from the environment, as a user runs it, started
    the way a shell script's `mprtune serve ... &` is: with SIGINT ignored (Ctrl-C must still stop it)."""
    env = {**compared.env, "MPRTUNE_API_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "mprtune", "serve", VARIANT, "--profile", "tiny", "--port", "0"],
        cwd=compared.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    output: list[str] = []
    deadline = time.monotonic() + 300
    match = None
    while match is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        match = re.search(r"at (http://127\.0\.0\.1:\d+/v1) \(ready in [\d.]+ s; pid (\d+)", line)
    assert match, "".join(output)
    while not output[-1].startswith("Ctrl-C"):  # the rest of the banner (examples)
        output.append(process.stdout.readline())
    yield Served(process, match.group(1), int(match.group(2)), output)
    if process.poll() is None:
        process.kill()
        process.wait()


def client(served: Served, key: str = KEY):
    from openai import OpenAI

    return OpenAI(base_url=served.base_url, api_key=key, max_retries=0, timeout=120)


def prompts(compared: Compared) -> list[str]:
    rows = (compared.root / "data/samples/fit.jsonl").read_text().splitlines()
    return [json.loads(line)["instruction"] for line in rows]


@pytest.mark.slow
def test_served_answers_match_the_evaluated_predictions(compared: Compared, served: Served) -> None:
    api = client(served)
    assert [m.id for m in api.models.list().data] == [VARIANT]
    answers = [
        api.chat.completions.create(model=VARIANT, temperature=0, messages=[{"role": "user", "content": p}])
        .choices[0]
        .message.content.strip()
        for p in prompts(compared)
    ]
    stored = compared.stored()
    assert answers == stored  # 100% parity, greedy
    # The tuned tiny model writes the corrections it was fitted on, " ." included (decoded as predict does).
    assert sum(a == ref for a, (_, ref) in zip(answers, FIT_PAIRS, strict=False)) >= 6, answers


@pytest.mark.slow
def test_banner_has_working_examples_and_no_key(compared: Compared, served: Served) -> None:
    banner = "".join(served.output)
    assert "curl -s " + served.base_url + "/chat/completions" in banner and "$MPRTUNE_API_KEY" in banner
    assert 'os.environ["MPRTUNE_API_KEY"]' in banner and KEY not in banner
    python = banner[banner.index("import os") : banner.index("Ctrl-C")]
    env = {**os.environ, "MPRTUNE_API_KEY": KEY}
    ran = subprocess.run(
        [sys.executable, "-c", python.replace('"Fix: ..."', '"Fix: i has two cat ."')],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0 and ran.stdout.strip() == compared.stored()[1], ran.stderr[-2000:]


@pytest.mark.slow
def test_wrong_or_missing_key_is_rejected_with_401(served: Served) -> None:
    import urllib.error
    import urllib.request

    import openai

    with pytest.raises(openai.AuthenticationError) as caught:
        client(served, "wrong-key").chat.completions.create(
            model=VARIANT, messages=[{"role": "user", "content": "Fix: x"}]
        )
    assert caught.value.status_code == 401
    for path, data in (("/models", None), ("/chat/completions", b'{"model": "m", "messages": []}')):
        with pytest.raises(urllib.error.HTTPError) as no_key:  # no Authorization header at all
            urllib.request.urlopen(urllib.request.Request(served.base_url + path, data=data), timeout=30)
        assert no_key.value.code == 401


@pytest.mark.slow
def test_bad_requests_get_clear_400s_and_the_server_keeps_serving(compared: Compared, served: Served) -> None:
    import urllib.error
    import urllib.request

    import openai

    api = client(served)
    message = [{"role": "user", "content": "Fix: i has two cat ."}]
    cases = [
        ({"messages": []}, "non-empty list"),
        ({"messages": message, "max_tokens": 10**9}, "1 to 4096"),
        ({"messages": message, "max_tokens": 0}, "1 to 4096"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            api.chat.completions.create(model=VARIANT, **kwargs)
        assert expected in str(caught.value)
    request = urllib.request.Request(
        served.base_url + "/chat/completions",
        data=b"{not json",
        method="POST",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400 and b"not valid JSON" in caught.value.read()
    with pytest.raises(openai.BadRequestError):  # LLaMA-Factory's own check: a conversation must end with the user
        api.chat.completions.create(model=VARIANT, messages=[*message, {"role": "assistant", "content": "x"}])
    answer = api.chat.completions.create(model=VARIANT, temperature=0, messages=message)
    assert answer.choices[0].message.content.strip() == compared.stored()[1]


@pytest.mark.slow
def test_check_reports_parity_and_latency_and_shows_a_changed_prediction(compared: Compared) -> None:
    path = compared.runs / VARIANT / "predict" / "generated_predictions.jsonl"
    original = path.read_text()
    rows = [json.loads(line) for line in original.splitlines()]
    rows[2]["predict"] = "A prediction the model never wrote ."
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        result = compared.cli("serve", VARIANT, "--check", "--port", "0", "--rows", "8", "--concurrency", "2")
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert "parity with compare: 7/8" in result.stdout
    assert "MISMATCH fit-2" in result.stdout and "A prediction the model never wrote ." in result.stdout
    assert "served answers differ" in result.stderr
    check = json.loads((compared.runs / VARIANT / "serve" / "tuned" / "check.json").read_text())
    assert [m["id"] for m in check["parity"]["mismatches"]] == ["fit-2"]
    assert check["parity"]["mismatches"][0]["served"] == json.loads(original.splitlines()[2])["predict"].strip()
    assert check["same_answers_under_load"] == 8
    assert [level["concurrency"] for level in check["latency"]] == [1, 2]
    for level in check["latency"]:
        assert level["errors"] == 0 and 0 < level["p50_s"] <= level["p95_s"] and level["tokens_per_second"] > 0
    assert check["server"]["memory_kind"] == "rss" and check["server"]["peak_memory_mb"] > 200
    assert check["settings"]["do_sample"] is False and check["settings"]["max_new_tokens"] == 48
    assert (compared.report / f"serve-{VARIANT}.md").read_text().count("| fit-2 |") == 1
    card = (compared.runs / VARIANT / "README.md").read_text()
    assert "Last serving check" in card and "7/8 answers identical" in card
    assert "exact match" in card and "[" in card  # metrics with intervals from the comparison


@pytest.mark.slow
def test_the_key_is_written_nowhere(compared: Compared, served: Served) -> None:
    for path in compared.root.rglob("*"):
        if path.is_file() and path.stat().st_size < 50 * 2**20:
            assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_export_writes_the_model_card_next_to_the_merged_weights(compared: Compared) -> None:
    merged = compared.root / "merged"
    exported = compared.cli("export", VARIANT, "--out", str(merged))
    assert exported.returncode == 0, exported.stderr[-3000:]
    card = (merged / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["library_name"] == "transformers" and front["base_model"].endswith("tiny-llama-a")
    assert "with the LoRA adapter of `fit_lora` merged in" in card
    assert "| learning_rate | 0.005 |" in card and '| lora_target | "all" |' in card
    assert "unknown: see source" in card  # the test's own `fit` data is not a corpus mprtune knows
    served_config = yaml.safe_load(card.split("```yaml\n")[1].split("```")[0])
    assert served_config == {
        "model_name_or_path": str(merged),
        "template": "llama3",
        "infer_backend": "huggingface",
        "do_sample": False,
        "max_new_tokens": 48,
    }
    report = json.loads((compared.report / "results.json").read_text())["variants"][0]
    gleu = report["tuned"]["metrics"]["gleu"]
    from mprtune.evaluate.formatting import format_stat

    assert format_stat(gleu, "points") in card  # the metrics as the report shows them (GLEU on 0-100)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:  # fields after "(comm)": state ppid pgrp
                members.append(int(entry))
    return members


@pytest.mark.slow
def test_ctrl_c_stops_the_server_and_leaves_no_process(served: Served) -> None:
    """Last test of the module: it stops the shared server."""
    assert group_members(served.server_pid)  # the server runs in its own process group
    served.process.send_signal(signal.SIGINT)
    rest, _ = served.process.communicate(timeout=60)
    assert served.process.returncode == 0 and "Server stopped." in rest
    assert group_members(served.server_pid) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(served.base_url.rsplit(":", 1)[1].split("/")[0])), timeout=2)


def test_check_without_predictions_raises_before_starting_anything(project: Project) -> None:
    from mprtune.serve.check import held_out_prompts
    from mprtune.serve.target import resolve_target

    ws = Workspace.open(project.matrix, "tiny")
    target = resolve_target(ws, "llama32_3b_grammar_lora", base=True)
    with pytest.raises(MprtuneError, match="run `mprtune compare llama32_3b_grammar_lora` first"):
        held_out_prompts(ws, target)

    # Stored predictions whose labels are not the eval rows (data re-prepared since compare) are refused.
    rows = [json.loads(line) for line in (project.root / "data/samples/jfleg_eval.jsonl").read_text().splitlines()]
    stored = [
        {
            "prompt": f"<|start_header_id|>user<|end_header_id|>\n\n{r['instruction']}<|eot_id|>",
            "predict": f" out {i} ",
            "label": r["output"] + "\n",
        }
        for i, r in enumerate(rows)
    ]
    folder = target.predict_folder
    folder.mkdir(parents=True)
    (folder / "predict_results.json").write_text("{}")
    (folder / "generated_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stored))
    target = resolve_target(ws, "llama32_3b_grammar_lora", base=True)
    prompts = held_out_prompts(ws, target)
    assert [p.stored for p in prompts] == [f"out {i}" for i in range(len(rows))]
    assert prompts[0].content == rows[0]["instruction"] and prompts[0].id == rows[0]["id"]
    stored[3]["label"] = "Not this row's correction ."
    (folder / "generated_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stored))
    with pytest.raises(MprtuneError, match=r"generated_predictions.jsonl:4: prediction belongs to another row"):
        held_out_prompts(ws, target)
