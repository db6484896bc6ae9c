"""The README is true: every command, option, make target and variant it shows exists.

Commands come from the README's shell code blocks and its inline code (`mprtune ...`, `make ...`)
and are checked against the click CLI itself (options, choices) and the Makefile, so a renamed
option or target fails here instead of in a new user's first hour.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from mprtune.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
ENTRY_POINTS = {"mprtune", ".venv/bin/mprtune"}


@dataclass(frozen=True)
class Shown:
    """One command line the README shows, with where it is."""

    line: int
    words: list[str]


def shell_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every line in shell code blocks, plus every inline code span."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip()
            continue
        if fence is not None:
            if fence in SHELL_BLOCKS:
                out.append((number, line))
        else:
            out += [(number, span) for span in re.findall(r"`([^`\n]+)`", line)]
    return out


def commands(text: str, program: set[str]) -> list[Shown]:
    """Every invocation of `program` (also after `&&`, `;`, `|`), comments removed."""
    found = []
    for number, line in shell_lines(text):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # prose in backticks, not a command
            continue
        segment: list[str] = []
        for word in [*words, ";"]:
            if word in ("&&", ";", "|", "||"):
                if segment and segment[0] in program:
                    found.append(Shown(number, segment))
                segment = []
            elif segment or not re.match(r"[A-Za-z_][A-Za-z0-9_]*=", word):  # VAR=value before a command
                segment.append(word)
    return found


def option_names(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(param.opts + param.secondary_opts)
    return names


def check_mprtune(shown: Shown) -> list[str]:
    where = f"README.md:{shown.line}: {' '.join(shown.words)}"
    args = shown.words[1:]
    if not args or args[0] in ("--help", "-h", "--version") or args[0].startswith("<"):  # <command>: a placeholder
        return []
    command = cli.commands.get(args[0])
    if command is None:
        return [f"{where}: no command {args[0]!r} (have {', '.join(sorted(cli.commands))})"]
    problems = []
    known = option_names(command)
    params = {opt: p for p in command.params for opt in p.opts}
    for i, word in enumerate(args[1:], 1):
        if not word.startswith("-") or word == "-":
            continue
        name, _, inline = word.partition("=")
        if name not in known:
            problems.append(f"{where}: {args[0]} has no option {name}")
            continue
        param = params.get(name)
        value = inline or (args[i + 1] if i + 1 < len(args) else "")
        if isinstance(getattr(param, "type", None), click.Choice) and value not in param.type.choices:
            problems.append(f"{where}: {name} {value!r} is not one of {param.type.choices}")
    return problems


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", text, flags=re.M))


def test_every_mprtune_command_and_option_in_the_readme_exists() -> None:
    shown = commands(README.read_text(), ENTRY_POINTS)
    used = {s.words[1] for s in shown if len(s.words) > 1}
    # The parser must really find the README's commands (else this test could not fail).
    assert {"render", "prepare-data", "plan", "train", "status", "collect", "compare", "score", "export"} <= used
    problems = [p for s in shown for p in check_mprtune(s)]
    assert not problems, "\n".join(problems)


def test_every_make_target_in_the_readme_exists() -> None:
    shown = commands(README.read_text(), {"make"})
    assert len(shown) >= 3
    targets = make_targets()
    problems = [
        f"README.md:{s.line}: make {w}: no such target in the Makefile"
        for s in shown
        for w in s.words[1:]
        if not w.startswith("-") and w not in targets
    ]
    assert not problems, "\n".join(problems)


def test_every_variant_named_in_the_readme_exists() -> None:
    from mprtune.config.matrix import load_matrix

    variants = set(load_matrix(ROOT / "mprtune.yaml").variants)
    named = set(re.findall(r"\b(llama\w+_lora)\b", README.read_text()))
    assert named and named <= variants, named - variants


def the_checker_catches(line: str) -> list[str]:
    return [p for s in commands(f"```bash\n{line}\n```\n", ENTRY_POINTS) for p in check_mprtune(s)]


def test_the_checker_catches_a_wrong_command_option_or_choice() -> None:
    assert the_checker_catches("mprtune trian --all")
    assert the_checker_catches("mprtune score --task grammar --profile demo")  # score has no --profile
    assert the_checker_catches("cd x && .venv/bin/mprtune train --backend pbs")
    assert not the_checker_catches("mprtune train --all --backend slurm --time 12:00:00  # --nope in a comment")


def _names(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def options_sentence() -> str:
    """Which commands take --profile and --config, as the CLI says today."""
    groups: dict[tuple[bool, bool], list[str]] = {}
    for name, command in sorted(cli.commands.items()):
        opts = option_names(command)
        groups.setdefault(("--profile" in opts, "--config" in opts), []).append(name)
    parts = []
    for (profile, config), what in (
        ((True, True), "`--profile NAME` (env `MPRTUNE_PROFILE`) and `--config PATH`"),
        ((False, True), "`--config PATH` only"),
        ((True, False), "`--profile` only"),
        ((False, False), "neither"),
    ):
        names = groups.get((profile, config))
        if names:
            parts.append(f"{_names(names)} {'takes' if len(names) == 1 else 'take'} {what}")
    return "; ".join(parts) + "."


def test_the_readme_says_which_commands_take_profile_and_config() -> None:
    readme = " ".join(README.read_text().split())
    sentence = options_sentence()
    assert sentence in readme, f"put this sentence (generated from the CLI) in README.md:\n{sentence}"


def test_the_documented_shell_completion_produces_a_working_bash_script() -> None:
    readme = README.read_text()
    assert "_MPRTUNE_COMPLETE=bash_source" in readme
    env = {**os.environ, "_MPRTUNE_COMPLETE": "bash_source"}
    script = subprocess.run(
        [sys.executable, "-m", "mprtune"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "complete -o nosort -F _mprtune_completion mprtune" in script
    sourced = subprocess.run(
        ["bash", "-c", script + "\ncomplete -p mprtune"], capture_output=True, text=True, timeout=30
    )
    assert sourced.returncode == 0 and "_mprtune_completion" in sourced.stdout, sourced.stderr
    # What bash asks when the user types `mprtune tr<TAB>`:
    env = {**os.environ, "_MPRTUNE_COMPLETE": "bash_complete", "COMP_WORDS": "mprtune tr", "COMP_CWORD": "1"}
    answer = subprocess.run([sys.executable, "-m", "mprtune"], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,train" in answer.stdout.splitlines()


@pytest.mark.parametrize("section", ["## The first hour"])
def test_the_first_hour_section_is_there(section: str) -> None:
    text = README.read_text()
    assert section in text
    first_hour = text.split(section, 1)[1].split("\n## ", 1)[0]
    for fact in (
        ".venv/bin/mprtune",
        "source .venv/bin/activate",
        "make clean",
        "MPRTUNE_JFLEG_DIR",
        "make test-fast",
        "make slurm-install",
        "GB",
    ):
        assert fact in first_hour, fact
    # `make clean` deletes exactly the folders the README says it deletes.
    recipe = re.search(r"^clean:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe and recipe.group(1).startswith("rm -rf ")
    removed = recipe.group(1).split()[2:]
    said = first_hour.split("make clean", 1)[1].split("- **", 1)[0]
    assert sorted(re.findall(r"`([\w.-]+)/`", said.split(");")[0])) == sorted(removed), said
