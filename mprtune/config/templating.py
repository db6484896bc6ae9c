"""The Jinja templates: mprtune's own (top-level `templates/`) and a project's overrides of them.

A project's `templates/` beside its mprtune.yaml replaces any built-in template of the same file
name: a site adds its `module load` lines to the sbatch script without forking mprtune. A
broken override is the project's input, so it is one error line with its file and line; a broken
built-in template is a bug and raises as such.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from mprtune.errors import MprtuneError
from mprtune.paths import user_cache_dir

PACKAGE = Path(__file__).resolve().parents[1]
# The wheel carries the top-level templates/ inside the package (setup.py); a checkout and its
# editable install (a plain .pth onto the checkout) read the top-level folder itself.
TEMPLATES_DIR = PACKAGE / "templates" if (PACKAGE / "templates").is_dir() else PACKAGE.parent / "templates"
OVERRIDES_DIR = "templates"  # beside a project's mprtune.yaml

Filters = tuple[tuple[str, Callable[[Any], str]], ...]

_site: Path | None = None  # the project's override folder, set when its matrix is opened
_used: set[Path] = set()


def use_project(matrix_file: Path) -> None:
    """Templates in `templates/` beside `matrix_file` override built-in ones from now on."""
    global _site
    _used.clear()
    folder = Path(matrix_file).resolve().parent / OVERRIDES_DIR
    _site = folder if folder.is_dir() and folder != TEMPLATES_DIR.resolve() else None


def overrides_used() -> list[Path]:
    """The project's templates that renderings in this process used instead of the built-in ones."""
    return sorted(_used)


def _bytecode_cache(folder: Path) -> jinja2.BytecodeCache | None:
    """Compiled templates cached on disk: compiling them is most of `render`'s own time."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


@lru_cache(maxsize=4)
def _environment(site: Path | None, filters: Filters) -> jinja2.Environment:
    searchpath = [str(site), str(TEMPLATES_DIR)] if site else [str(TEMPLATES_DIR)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(searchpath),
        bytecode_cache=_bytecode_cache(user_cache_dir() / "jinja"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(dict(filters))
    return env


def _override_line(site: Path, exc: BaseException) -> tuple[Path, int | None] | None:
    """The override file (and line) an error comes from, or None when it is not an override's."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        file = Path(exc.filename)
        return (file, exc.lineno) if file.parent == site else None
    found = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:  # Jinja rewrites the traceback: template lines appear as frames of the template file
        file = Path(tb.tb_frame.f_code.co_filename)
        if file.parent == site:
            found = (file, tb.tb_lineno)
        tb = tb.tb_next
    return found


def render(name: str, context: dict[str, Any], filters: Filters = ()) -> str:
    """Render template `name` (the project's override of it when there is one)."""
    site = _site
    try:
        template = _environment(site, filters).get_template(name)
        if site is not None and template.filename and Path(template.filename).parent == site:
            _used.add(Path(template.filename))
        return template.render(**context)
    except (jinja2.TemplateError, TypeError, ValueError, LookupError, AttributeError) as exc:
        where = _override_line(site, exc) if site is not None else None
        if where is None:
            raise
        file, line = where
        reason = (
            exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else f"{type(exc).__name__}: {exc}"
        )
        raise MprtuneError(
            f"{file}:{line or '?'}: template override does not render ({reason.splitlines()[0]}); "
            f"fix it, or delete it to use the built-in {name}"
        ) from None
