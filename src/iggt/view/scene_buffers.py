"""A saved result turned into what the page draws: one binary point buffer and a JSON description.

Points are sent as raw little-endian arrays, not JSON numbers: a million points is 23 MB that
the browser maps straight into typed arrays, where JSON would need seconds to parse. The layout
(offsets in bytes, N points) is

| array | dtype | bytes |
|---|---|---|
| xyz | float32 (N, 3), world frame (OpenCV, the first camera) | 12 N |
| instance_id | uint32 (N,), 0 = none | 4 N |
| rgb | uint8 (N, 3) image colour | 3 N |
| pca | uint8 (N, 3) first three principal components of the instance features | 3 N |
| confidence_rank | uint8 (N,): the point's confidence quantile among the drawn points x 255 | N |

Display decimation is the export's own point selection (a seeded random subset of the finite
pixels, :func:`iggt.export.selection.select_points`); exports are never decimated by the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iggt.export.colours import instance_colours
from iggt.export.frusta import frustum_segments
from iggt.export.glb import default_frustum_depth, pca_colours
from iggt.export.options import ExportOptions
from iggt.export.selection import select_points
from iggt.tasks.result import SavedResult

DEFAULT_MAX_DISPLAY_POINTS = 500_000
"""Most points drawn; more are decimated for display only."""
LAYOUT = (
    ("xyz", "float32", 3),
    ("instance_id", "uint32", 1),
    ("rgb", "uint8", 3),
    ("pca", "uint8", 3),
    ("confidence_rank", "uint8", 1),
)


@dataclass
class SceneDisplay:
    """The page's view of one result: ``meta`` (JSON-ready) and ``points`` (the binary buffer above)."""

    meta: dict
    points: bytes


def build_display(
    result: SavedResult, max_points: int = DEFAULT_MAX_DISPLAY_POINTS, labels: dict[int, str] | None = None
) -> SceneDisplay:
    """Decimated point buffer, cameras, frusta and the instance table of ``result``."""
    predictions = result.predictions
    options = ExportOptions(point_source="world_points", confidence_quantile=0.0, max_points=max_points)
    selection = select_points(predictions, result.instances, options, max_points)
    features = predictions.instance_feat.reshape(-1, predictions.instance_feat.shape[-1])
    arrays = {
        "xyz": selection.xyz.astype("<f4"),
        "instance_id": selection.instance_id.astype("<u4"),
        "rgb": selection.rgb,
        "pca": pca_colours(features[selection.index], options.seed),
        "confidence_rank": _rank_uint8(selection.confidence),
    }
    buffer, layout = _pack(arrays, len(selection.index))
    meta = {
        "folder": result.folder.name,
        "num_points": len(selection.index),
        "num_pixels": int(np.prod(predictions.depth.shape)),
        "layout": layout,
        "image_size": list(predictions.image_size),
        "views": _views(result),
        "frusta": frustum_segments(
            predictions.extrinsic, predictions.intrinsic, predictions.image_size, default_frustum_depth(predictions)
        )
        .round(5)
        .tolist(),
        "bounds": _bounds(selection.xyz),
        "instances": instance_table(result, labels),
    }
    return SceneDisplay(meta, buffer)


def instance_table(result: SavedResult, labels: dict[int, str] | None = None) -> list[dict]:
    """One row per instance: ID, colour (as in the exported overlays), label, pixels, views that show it."""
    instances = result.instances
    colours = instance_colours(instances.ids)
    return [
        {
            "id": int(instance_id),
            "colour": colours[row].tolist(),
            "label": (labels or {}).get(int(instance_id)),
            "pixels": int(instances.pixel_counts[row].sum()),
            "views": np.flatnonzero(instances.pixel_counts[row] > 0).tolist(),
        }
        for row, instance_id in enumerate(instances.ids.tolist())
    ]


def _views(result: SavedResult) -> list[dict]:
    predictions = result.predictions
    return [
        {"name": name, "extrinsic": extrinsic.tolist(), "intrinsic": intrinsic.tolist()}
        for name, extrinsic, intrinsic in zip(
            result.view_names, predictions.extrinsic, predictions.intrinsic, strict=True
        )
    ]


def _rank_uint8(confidence: np.ndarray) -> np.ndarray:
    """(N,) confidences -> (N,) uint8 quantile ranks: the slider at q hides the least confident q."""
    if len(confidence) == 0:
        return np.zeros(0, np.uint8)
    order = np.argsort(confidence, kind="stable")
    rank = np.empty(len(confidence), np.float64)
    rank[order] = np.arange(len(confidence)) / max(len(confidence) - 1, 1)
    return np.round(rank * 255).astype(np.uint8)


def _pack(arrays: dict[str, np.ndarray], count: int) -> tuple[bytes, list[dict]]:
    """Concatenate the arrays in LAYOUT order; float32 and uint32 first, so every view is aligned."""
    parts, layout, offset = [], [], 0
    for name, dtype, width in LAYOUT:
        data = np.ascontiguousarray(arrays[name], dtype=np.dtype(dtype).newbyteorder("<")).reshape(count * width)
        parts.append(data.tobytes())
        layout.append({"name": name, "dtype": dtype, "components": width, "offset": offset})
        offset += data.nbytes
    return b"".join(parts), layout


def _bounds(xyz: np.ndarray) -> dict:
    """Centre and radius that frame the bulk of the points (2nd-98th percentiles: flying pixels ignored)."""
    if len(xyz) == 0:
        return {"centre": [0.0, 0.0, 1.0], "radius": 1.0}
    low, high = np.percentile(xyz, [2, 98], axis=0)
    return {"centre": ((low + high) / 2).tolist(), "radius": float(max(np.linalg.norm(high - low) / 2, 1e-3))}
