"""points.ply: the confident predicted points, binary little-endian PLY (MeshLab, Blender, CloudCompare).

Vertex properties: x, y, z (float32, world = first camera's OpenCV frame), red, green, blue
(uint8 image colour), instance_id (int32, 0 = none), confidence (float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iggt.export.options import ExportOptions
from iggt.export.selection import public_exporter, select_points
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
    from plyfile import PlyData, PlyElement  # optional dependency: imported where it is used

    selection = select_points(predictions, instances, options, options.max_points)
    vertices = np.empty(len(selection.index), dtype=VERTEX_DTYPE)
    for axis, name in enumerate("xyz"):
        vertices[name] = selection.xyz[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = selection.rgb[:, channel]
    vertices["instance_id"] = selection.instance_id
    vertices["confidence"] = selection.confidence
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "points.ply"
    PlyData([PlyElement.describe(vertices, "vertex")], byte_order="<").write(str(path))
    return [path]


export_ply = public_exporter(write_ply)
