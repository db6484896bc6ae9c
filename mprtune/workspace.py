"""One experiment as every command sees it: the matrix (with its profile), the project root and the runs dir.

Commands open a Workspace once and pass it down instead of repeating (matrix, runs, root, ...)
argument lists; every location of the project derives from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mprtune import paths
from mprtune.config import templating
from mprtune.config.matrix import REFERENCE_PROFILE, Matrix, Variant, load_matrix


@dataclass(frozen=True)
class Workspace:
    matrix: Matrix
    root: Path
    runs: Path

    def __post_init__(self) -> None:
        templating.use_project(self.matrix.source)  # its templates/ override the built-in ones from now on

    @classmethod
    def open(
        cls, config_path: Path | None = None, profile: str = REFERENCE_PROFILE, runs_dir: Path | None = None
    ) -> Workspace:
        root = paths.project_root()
        matrix = load_matrix(config_path or root / paths.MATRIX_FILE, profile)
        runs = paths.check_folder(paths.runs_dir(root, profile, runs_dir), "--runs-dir" if runs_dir else "runs dir")
        return cls(matrix, root, runs)

    @property
    def profile(self) -> str:
        return self.matrix.profile

    @property
    def is_reference(self) -> bool:
        return self.matrix.profile == REFERENCE_PROFILE

    @property
    def data_dir(self) -> Path:
        return self.root / self.matrix.data_dir

    @property
    def render_dir(self) -> Path:
        """The reference profile renders the committed files; others render under .mprtune/profiles/."""
        return self.root if self.is_reference else paths.profile_render_dir(self.root, self.profile)

    @property
    def reports_dir(self) -> Path:
        return self.root / paths.REPORTS_DIR

    @property
    def cache_dir(self) -> Path:
        return paths.cache_dir(self.root)

    def run_dir(self, variant: str) -> Path:
        return self.runs / variant

    def select(self, names: list[str] | tuple[str, ...]) -> list[Variant]:
        return self.matrix.select(list(names))

    def variants(self) -> list[Variant]:
        return list(self.matrix.variants.values())
