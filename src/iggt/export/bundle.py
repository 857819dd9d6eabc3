"""export_all: write several formats into one directory, atomically.

Everything is written into a hidden temporary sibling of ``out_dir`` (same file system, so the
final rename is atomic) and moved into place only when every format succeeded. A failure
removes the temporary directory and leaves ``out_dir`` as it was; a directory named ``out_dir``
therefore always holds a complete export. The checks, the lock against concurrent runs and the
move are those of :mod:`iggt.io.output_dir` (docs/reliability.md).

Inputs are checked here once, before the destination is claimed (:func:`check_formats`, then
:func:`iggt.export.selection.check_matching`); the writers in :data:`EXPORTERS` take checked inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from iggt.errors import InputError
from iggt.export.colmap import write_colmap
from iggt.export.glb import write_glb
from iggt.export.instances_json import write_json
from iggt.export.masks import write_masks
from iggt.export.npz import write_npz
from iggt.export.options import ExportOptions
from iggt.export.ply import write_ply
from iggt.export.selection import Writer, check_matching
from iggt.io.output_dir import claim_output_dir, interrupts_deferred, publish, staging_dir, writing_into
from iggt.structures import Instances, Predictions

EXPORTERS: dict[str, Writer] = {
    "npz": write_npz,
    "ply": write_ply,
    "glb": write_glb,
    "masks": write_masks,
    "colmap": write_colmap,
    "json": write_json,
}
"""The export formats, in the order they are written: each name's writer (taking checked inputs)."""
DEFAULT_FORMATS = tuple(EXPORTERS)


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """``formats`` as a tuple, or InputError naming the unknown ones and the choices.

    The one check of format names: :func:`export_all` calls it, and ``iggt reconstruct`` calls it
    before the model loads, so a typo costs no model run.
    """
    unknown = [name for name in dict.fromkeys(formats) if name not in EXPORTERS]
    if unknown:
        raise InputError(
            f"unknown export formats {' '.join(unknown)}; choose from {' '.join(EXPORTERS)}",
            {"export formats": "formats"},
        )
    return tuple(formats)


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
    for a destination :func:`iggt.io.output_dir.check_output_dir` refuses (a non-empty one unless
    ``overwrite``); OutputError when another run holds ``out_dir`` or the disk is full.
    """
    options = options or ExportOptions()
    formats = check_formats(formats)
    check_matching(predictions, instances)
    label, hint = "export directory", "pass overwrite=True or choose another folder"
    with claim_output_dir(out_dir, overwrite=overwrite, label=label, overwrite_hint=hint) as path:
        writers = {name: partial(EXPORTERS[name], predictions, instances, options=options) for name in formats}
        with writing_into(path, label):
            written = _write_and_publish({**writers, **(extra_writers or {})}, path, overwrite)
    shown = Path(out_dir).absolute()  # the folder as the caller named it (path is its resolved real path)
    return {name: [shown / relative for relative in files] for name, files in written.items()}


def _write_and_publish(writers: Mapping[str, Callable[[Path], list[Path]]], path: Path, overwrite: bool):
    """Run every writer on one staging folder, then publish it at ``path``; {name: paths relative to it}.

    The writers all run at once, each on its own thread: deflating predictions.npz and encoding PNGs
    release the GIL (and each spreads over threads of its own), so the formats with serial Python
    parts (the point selection of PLY, GLB and COLMAP) run beside them. Each writer has its own
    files, so the bytes do not depend on the order in which they finish. The first failure (in
    format order) is raised once no writer is running any more, so the staging folder is removed
    after the last write.
    """
    threads = max(1, len(writers))
    with staging_dir(path) as staging, ThreadPoolExecutor(threads, thread_name_prefix="export") as pool:
        with interrupts_deferred():  # the pool must know every thread it starts: see interrupts_deferred
            futures = {name: pool.submit(writer, staging) for name, writer in writers.items()}
        try:
            written = {name: [file.relative_to(staging) for file in job.result()] for name, job in futures.items()}
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        publish(staging, path, overwrite)
    return written
