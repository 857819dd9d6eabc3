"""Showing chosen instances: tinted views (PNG) and their 3D points (PLY), shared by query and ask."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from iggt.export.naming import view_names
from iggt.export.options import ExportOptions
from iggt.export.ply import VERTEX_DTYPE, point_columns, write_vertices
from iggt.export.selection import select_points, to_uint8
from iggt.tasks.result import SavedResult

HIGHLIGHT_RED = np.array([1.0, 0.0, 0.0], np.float32)
HIGHLIGHT_ALPHA = 0.5


def tint(image: np.ndarray, mask: np.ndarray, colour: np.ndarray = HIGHLIGHT_RED, alpha: float = HIGHLIGHT_ALPHA):
    """(H, W, 3) float image in [0, 1] with the (H, W) bool ``mask`` blended towards ``colour``; returns uint8."""
    blended = np.where(mask[..., None], (1 - alpha) * image + alpha * colour, image)
    return to_uint8(blended)


def write_highlights(result: SavedResult, instance_ids: Sequence[int], folder: Path) -> list[Path]:
    """``views/highlight_NNN.png`` (the instances tinted red) for the views that show any of them,
    and ``points.ply`` (the confident points of the instances, the export's PLY layout)."""
    mask = np.isin(result.instances.labels, np.asarray(list(instance_ids), dtype=np.int64))
    views_dir = folder / "views"
    views_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for view, name in enumerate(view_names(result.num_views, "highlight")):
        if mask[view].any():
            Image.fromarray(tint(result.predictions.images[view], mask[view])).save(views_dir / name)
            written.append(views_dir / name)
    selection = select_points(result.predictions, result.instances, ExportOptions(max_points=None), None)
    keep = np.isin(selection.instance_id, np.asarray(list(instance_ids), dtype=np.int64))
    return [*written, write_vertices(folder / "points.ply", VERTEX_DTYPE, point_columns(selection, keep))]
