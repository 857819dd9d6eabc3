"""export_all: write several formats into one directory, atomically.

Everything is written into a hidden temporary sibling of ``out_dir`` (same file system, so the
final rename is atomic) and renamed into place only when every format succeeded. A failure
removes the temporary directory and leaves ``out_dir`` as it was; a directory named ``out_dir``
therefore always holds a complete export. With ``overwrite=True`` an existing ``out_dir`` is
first renamed aside, replaced by the new one, then deleted.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from iggt.errors import InputError
from iggt.export.colmap import export_colmap
from iggt.export.glb import export_glb
from iggt.export.instances_json import export_json
from iggt.export.masks import export_masks
from iggt.export.npz import export_npz
from iggt.export.options import ExportOptions
from iggt.export.ply import export_ply
from iggt.export.selection import check_matching
from iggt.structures import Instances, Predictions

Exporter = Callable[[Predictions, Instances, Path, ExportOptions], list[Path]]

EXPORTERS: dict[str, Exporter] = {
    "npz": export_npz,
    "ply": export_ply,
    "glb": export_glb,
    "masks": export_masks,
    "colmap": export_colmap,
    "json": export_json,
}
DEFAULT_FORMATS = ("npz", "ply", "glb", "masks", "colmap", "json")


def export_all(
    predictions: Predictions,
    instances: Instances,
    out_dir: str | Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
    overwrite: bool = False,
    options: ExportOptions | None = None,
    extra_writers: Mapping[str, Callable[[Path], list[Path]]] | None = None,
) -> dict[str, list[Path]]:
    """Write ``formats`` into ``out_dir``; returns the written files of each format.

    ``extra_writers`` maps names to functions that write more files into the directory they are
    given and return them; they run before the directory is moved into place, so their files are
    as atomic as the rest, and their files are returned under their names.

    Raises InputError for an unknown format, for labels that do not match the predictions, and
    when ``out_dir`` exists and is not empty unless ``overwrite``.
    """
    options = options or ExportOptions()
    unknown = [name for name in formats if name not in EXPORTERS]
    if unknown:
        raise InputError(f"unknown export formats {unknown}; choose from {list(EXPORTERS)}")
    check_matching(predictions, instances)
    out_dir = Path(out_dir).absolute()
    _check_destination(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary directory
    try:
        written = {name: EXPORTERS[name](predictions, instances, staging, options) for name in formats}
        for name, writer in (extra_writers or {}).items():
            written[name] = writer(staging)
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {name: [out_dir / path.relative_to(staging) for path in paths] for name, paths in written.items()}


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"export destination {out_dir} is a file; pass a directory path")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(
            f"export directory {out_dir} is not empty; pass overwrite=True or choose another directory",
            {"overwrite=True": "overwrite"},
        )


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``, replacing an existing ``out_dir`` (restored on failure)."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    previous = out_dir.parent / f".{out_dir.name}.previous-{uuid.uuid4().hex}"
    out_dir.rename(previous)
    try:
        staging.rename(out_dir)
    except BaseException:
        previous.rename(out_dir)
        raise
    shutil.rmtree(previous, ignore_errors=True)
