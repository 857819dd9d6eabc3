"""Task outputs are written like exports: into a staging folder renamed into place when complete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from iggt.export import export_all
from iggt.tasks.result import SavedResult


def write_output_folder(
    result: SavedResult, out_dir: str | Path, writer: Callable[[Path], list[Path]], overwrite: bool = False
) -> list[Path]:
    """Run ``writer(folder)`` on a staging folder and move it to ``out_dir`` atomically; returns the files.

    The folder is checked, locked and published by :func:`iggt.export.export_all` (one output-folder rule,
    :mod:`iggt.io.output_dir`): a non-empty ``out_dir`` is refused unless ``overwrite``, and a failing
    ``writer`` leaves it as it was.
    """
    written = export_all(
        result.predictions, result.instances, out_dir, formats=(), overwrite=overwrite, extra_writers={"task": writer}
    )
    return written["task"]


def default_output_folder(result: SavedResult, name: str) -> Path:
    """Where a task writes when no --out is given: a subfolder of the result."""
    return result.folder / name
