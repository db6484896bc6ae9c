"""The wheel carries the top-level templates/ as mprtune/templates/ (the only thing pyproject.toml cannot say).

package-dir cannot map one sub-package onto another folder without turning the editable install
into an import hook (see pyproject.toml), so the templates are copied at build time instead; the
editable install reads the checkout's templates/ directly (mprtune/config/templating.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "mprtune" / "templates"
        target.mkdir(parents=True, exist_ok=True)
        for template in sorted(TEMPLATES.glob("*.j2")):
            shutil.copyfile(template, target / template.name)


setup(cmdclass={"build_py": BuildPy})
