"""points.ply: the confident predicted points, binary little-endian PLY (MeshLab, Blender, CloudCompare).

Vertex properties: x, y, z (float32, world = first camera's OpenCV frame), red, green, blue
(uint8 image colour), instance_id (int32, 0 = none), confidence (float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iggt.export.options import ExportOptions
from iggt.export.selection import PointSelection, public_exporter, select_points
from iggt.structures import Instances, Predictions

VERTEX_DTYPE = np.dtype(
    [
        ("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
        ("red", "u1"), ("green", "u1"), ("blue", "u1"),
        ("instance_id", "<i4"), ("confidence", "<f4"),
    ]
)  # fmt: skip


def write_ply(predictions: Predictions, instances: Instances, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``points.ply`` (confidence-filtered, at most ``options.max_points``); returns its path."""
    selection = select_points(predictions, instances, options, options.max_points)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_vertices(out_dir / "points.ply", VERTEX_DTYPE, point_columns(selection))]


def xyz_rgb_columns(xyz: np.ndarray, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 3) positions and (N, 3) colours as the vertex columns x, y, z, red, green, blue."""
    positions = {name: xyz[:, axis] for axis, name in enumerate("xyz")}
    return {**positions, **{name: rgb[:, channel] for channel, name in enumerate(("red", "green", "blue"))}}


def point_columns(selection: PointSelection, keep: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
    """The columns of ``VERTEX_DTYPE`` for the selected points (optionally only those in ``keep``)."""
    columns = xyz_rgb_columns(selection.xyz[keep], selection.rgb[keep])
    return {**columns, "instance_id": selection.instance_id[keep], "confidence": selection.confidence[keep]}


def write_vertices(path: Path, dtype: np.dtype, columns: dict[str, np.ndarray]) -> Path:
    """Write one binary little-endian PLY vertex element of ``dtype``, each property from ``columns``."""
    from plyfile import PlyData, PlyElement  # optional dependency: imported where it is used

    vertices = np.empty(len(columns[dtype.names[0]]), dtype=dtype)
    for name in dtype.names:
        vertices[name] = columns[name]
    PlyData([PlyElement.describe(vertices, "vertex")], byte_order="<").write(str(path))
    return path


export_ply = public_exporter(write_ply)
