"""A project's own templates/ beside its mprtune.yaml override built-in templates by file name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mprtune.cli import cli
from mprtune.config import templating
from mprtune.config.render import TEMPLATES_DIR

ROOT = Path(__file__).resolve().parents[1]
A = "llama32_3b_grammar_lora"


@pytest.fixture(autouse=True)
def _built_in_templates_afterwards() -> Iterator[None]:
    yield
    templating.use_project(ROOT / "mprtune.yaml")  # later tests in this process render the built-in ones


def override(project, name: str, text: str) -> Path:  # noqa: ANN001 (conftest's Project)
    folder = project.root / "templates"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_the_built_in_templates_are_the_top_level_folder_of_a_checkout() -> None:
    assert TEMPLATES_DIR == ROOT / "templates"
    assert (TEMPLATES_DIR / "sbatch.sh.j2").is_file() and not (ROOT / "mprtune" / "config" / "templates").exists()


def test_an_sbatch_script_is_rendered_through_a_site_override(project) -> None:  # noqa: ANN001
    built_in = (TEMPLATES_DIR / "sbatch.sh.j2").read_text()
    shebang, rest = built_in.split("\n", 1)
    override(project, "sbatch.sh.j2", f"{shebang}\nmodule load site-cuda/12.4  # our cluster's CUDA\n{rest}")
    result = CliRunner().invoke(cli, ["train", "--dry-run", "--backend", "slurm", A])
    assert result.exit_code == 0, result.output
    script = result.output.split(f"# what the backend submits for {A}:\n", 1)[1]
    assert script.startswith("#!/bin/bash\nmodule load site-cuda/12.4  # our cluster's CUDA\n#")
    assert "#SBATCH --job-name=" in script and "llamafactory-cli" in script


def test_render_names_each_override_it_used_and_uses_it(project) -> None:  # noqa: ANN001
    built_in = (TEMPLATES_DIR / "train.yaml.j2").read_text()
    used = override(project, "train.yaml.j2", built_in + "# site: trained on the north cluster\n")
    unused = override(project, "sbatch.sh.j2", "#!/bin/bash\n")  # render writes no sbatch script
    result = CliRunner().invoke(cli, ["render", "--no-lf-check"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Template override:")]
    assert lines == [f"Template override: {used} (used instead of the built-in template of that name)"]
    assert str(unused) not in result.output
    rendered = (project.root / "llamafactory_configs" / f"{A}.yaml").read_text()
    assert rendered.endswith("# site: trained on the north cluster\n")


@pytest.mark.parametrize(
    "tail,reason",
    [
        ("{{ site_note }}\n", "'site_note' is undefined"),
        ("{% if %}\n", "Expected an expression"),
        ("{{ recipe | no_such_filter }}\n", "No filter named 'no_such_filter'"),
    ],
)
def test_an_override_that_does_not_render_is_one_error_line_with_its_file_and_line(
    project,  # noqa: ANN001
    tail: str,
    reason: str,
) -> None:
    built_in = (TEMPLATES_DIR / "train.yaml.j2").read_text()
    path = override(project, "train.yaml.j2", built_in + tail)
    line = built_in.count("\n") + 1
    result = CliRunner().invoke(cli, ["render", "--no-lf-check"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}:{line}: template override does not render ("), lines
    assert reason in lines[0] and "delete it to use the built-in train.yaml.j2" in lines[0]
