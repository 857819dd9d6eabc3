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

from iggt.export.masks import check_id_range, save_id_png
from iggt.export.naming import view_names
from iggt.structures.strict_json import write_strict_json

SUMMARY_FILENAME = "reconstruction.json"
ORIGINAL_RESOLUTION_DIR = "original_resolution"


def write_summary(summary: dict, out_dir: Path) -> list[Path]:
    """Write ``summary`` (plain JSON types) as ``reconstruction.json``; returns its path."""
    return [write_strict_json(out_dir / SUMMARY_FILENAME, summary)]


def write_original_resolution(
    instance_labels: Sequence[np.ndarray], depth: Sequence[np.ndarray], out_dir: Path
) -> list[Path]:
    """S (H_i, W_i) instance-ID maps and S (H_i, W_i) depth maps -> ``original_resolution/``; returns the files."""
    for labels in instance_labels:
        check_id_range(labels)
    folder = out_dir / ORIGINAL_RESOLUTION_DIR
    folder.mkdir()
    written = []
    count = len(instance_labels)
    for labels, view_depth, id_name, depth_name in zip(
        instance_labels, depth, view_names(count, "instance_ids"), view_names(count, "depth", ".npy"), strict=True
    ):
        save_id_png(labels, folder / id_name)
        np.save(folder / depth_name, view_depth.astype(np.float32))
        written += [folder / id_name, folder / depth_name]
    return written
