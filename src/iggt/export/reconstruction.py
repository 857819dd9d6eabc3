"""The files only a reconstruction from input images has, beside the export formats.

- ``reconstruction.json``: inputs, model, timings and each view's resolution mapping
  (:meth:`iggt.inference.Reconstruction.to_json`), strict JSON.
- ``original_resolution/instance_ids_<view>.png`` (16-bit IDs, as the masks) and
  ``original_resolution/depth_<view>.npy`` (float32 z-depth, 0 where the network never saw the
  pixel), each at its input's own size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iggt.errors import InputError
from iggt.export.masks import check_id_range, save_id_png
from iggt.export.naming import view_names
from iggt.export.view_files import map_views
from iggt.structures.strict_json import write_strict_json

SUMMARY_FILENAME = "reconstruction.json"
ORIGINAL_RESOLUTION_DIR = "original_resolution"


def write_summary(summary: dict, out_dir: Path) -> list[Path]:
    """Write ``summary`` (plain JSON types) as ``reconstruction.json``; returns its path."""
    return [write_strict_json(out_dir / SUMMARY_FILENAME, summary)]


def write_original_resolution(
    instance_labels: Sequence[np.ndarray], depth: Sequence[np.ndarray], out_dir: Path, threads: int | None = None
) -> list[Path]:
    """S (H_i, W_i) instance-ID maps and S (H_i, W_i) depth maps -> ``original_resolution/``, the
    views on ``threads`` threads (None: every CPU this process may use); returns the files."""
    count = len(instance_labels)
    if len(depth) != count:
        raise InputError(f"{count} instance-ID maps but {len(depth)} depth maps; pass one of each per view")
    for labels in instance_labels:
        check_id_range(labels)
    folder = out_dir / ORIGINAL_RESOLUTION_DIR
    folder.mkdir()
    id_names, depth_names = view_names(count, "instance_ids"), view_names(count, "depth", ".npy")

    def write_view(view: int) -> list[Path]:
        save_id_png(instance_labels[view], folder / id_names[view])
        np.save(folder / depth_names[view], np.asarray(depth[view]).astype(np.float32))
        return [folder / id_names[view], folder / depth_names[view]]

    return [path for paths in map_views(write_view, count, threads) for path in paths]
