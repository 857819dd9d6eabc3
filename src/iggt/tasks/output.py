"""Task outputs are written like exports: into a staging folder renamed into place when complete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from iggt.errors import InputError
from iggt.export import export_all
from iggt.tasks.result import SavedResult


def write_output_folder(
    result: SavedResult, out_dir: str | Path, writer: Callable[[Path], list[Path]], overwrite: bool = False
) -> list[Path]:
    """Run ``writer(folder)`` on a staging folder and move it to ``out_dir`` atomically; returns the files.

    A non-empty ``out_dir`` is refused unless ``overwrite`` (then it is replaced as a whole); a failing
    ``writer`` leaves ``out_dir`` as it was (the atomic staging of :func:`iggt.export.export_all`).
    """
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(f"output folder {out_dir} is not empty; pass --overwrite or choose another --out")
    written = export_all(
        result.predictions, result.instances, out_dir, formats=(), overwrite=overwrite, extra_writers={"task": writer}
    )
    return written["task"]


def default_output_folder(result: SavedResult, name: str) -> Path:
    """Where a task writes when no --out is given: a subfolder of the result."""
    return result.folder / name
