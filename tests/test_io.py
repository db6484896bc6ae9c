"""Files mprtune writes: atomic, and readable like any file the user makes."""

from __future__ import annotations

from pathlib import Path


def test_files_mprtune_publishes_get_ordinary_permissions(tmp_path: Path) -> None:
    import os

    from mprtune.io import atomic_write

    old = os.umask(0o022)
    try:
        text = atomic_write(tmp_path / "report.md", "x")
        png = atomic_write(tmp_path / "metrics.png", b"\x89PNG")
    finally:
        os.umask(old)
    assert oct(text.stat().st_mode & 0o777) == oct(png.stat().st_mode & 0o777) == "0o644"
