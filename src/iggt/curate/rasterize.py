"""Z-buffer rendering of a labelled triangle mesh into pinhole cameras (path B's projection).

Triangles are clipped against the near plane in the camera frame (rooms surround the camera, so
floors and walls reach behind it), projected, and every pixel centre (u, v) inside a triangle gets
its perspective-correct depth; the nearest triangle per pixel wins. Conventions are those of
docs/architecture.md: OpenCV cameras, camera-from-world extrinsics, pixel (u, v) = column u, row v.
"""

from __future__ import annotations

import numpy as np

NEAR = 1e-3
"""Near plane in metres: parts of triangles closer to the camera than this are cut off."""
_CHUNK = 4_000_000
"""Candidate pixels processed at once (memory)."""


def _clip_near(triangles: np.ndarray, values: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray]:
    """(F, 3, 3) camera-frame triangles -> the parts with z >= near, as (F', 3, 3) and their values."""
    inside = triangles[..., 2] >= near
    count = inside.sum(1)
    kept, kept_values = [triangles[count == 3]], [values[count == 3]]
    for n_in in (1, 2):
        group = triangles[count == n_in]
        if not len(group):
            continue
        flags = inside[count == n_in]
        # rotate each triangle so that the lone vertex (the one inside for n_in = 1, outside for 2) comes first
        lone = np.argmax(flags if n_in == 1 else ~flags, axis=1)
        order = (lone[:, None] + np.arange(3)[None]) % 3
        a, b, c = (np.take_along_axis(group, order[:, k, None, None].repeat(3, 2), 1)[:, 0] for k in range(3))
        ab = a + (b - a) * ((near - a[:, 2]) / (b[:, 2] - a[:, 2]))[:, None]
        ac = a + (c - a) * ((near - a[:, 2]) / (c[:, 2] - a[:, 2]))[:, None]
        group_values = values[count == n_in]
        if n_in == 1:
            kept.append(np.stack([a, ab, ac], 1))
            kept_values.append(group_values)
        else:
            kept.extend([np.stack([ab, b, c], 1), np.stack([ab, c, ac], 1)])
            kept_values.extend([group_values, group_values])
    return np.concatenate(kept), np.concatenate(kept_values)


def render_labels(
    vertices: np.ndarray,
    faces: np.ndarray,
    face_values: np.ndarray,
    intrinsic: np.ndarray,
    extrinsic: np.ndarray,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Render one view.

    Args:
        vertices: (V, 3) world points; faces: (F, 3) vertex indices; face_values: (F,) int per face.
        intrinsic: (3, 3); extrinsic: (3, 4) camera-from-world; size: (H, W).

    Returns:
        values: (H, W) int64 value of the nearest face (0 where nothing is hit);
        depth: (H, W) float64 z-depth of that face (0 where nothing is hit).
    """
    height, width = size
    camera = vertices @ extrinsic[:3, :3].T + extrinsic[:3, 3]
    triangles, values = _clip_near(camera[faces], np.asarray(face_values), NEAR)
    z = triangles[..., 2]
    u = intrinsic[0, 0] * triangles[..., 0] / z + intrinsic[0, 2]
    v = intrinsic[1, 1] * triangles[..., 1] / z + intrinsic[1, 2]
    u0 = np.clip(np.ceil(u.min(1)), 0, width).astype(np.int64)
    u1 = np.clip(np.floor(u.max(1)), -1, width - 1).astype(np.int64)
    v0 = np.clip(np.ceil(v.min(1)), 0, height).astype(np.int64)
    v1 = np.clip(np.floor(v.max(1)), -1, height - 1).astype(np.int64)
    spans = np.maximum(u1 - u0 + 1, 0) * np.maximum(v1 - v0 + 1, 0)
    best_depth = np.full(height * width, np.inf)
    best_value = np.zeros(height * width, dtype=np.int64)
    start = 0
    while start < len(spans):
        stop = start + max(1, int(np.searchsorted(np.cumsum(spans[start:]), _CHUNK)))
        _rasterize_chunk(slice(start, stop), u, v, z, u0, v0, u1, spans, values, width, best_depth, best_value)
        start = stop
    hit = np.isfinite(best_depth)
    return best_value.reshape(size) * hit.reshape(size), np.where(hit, best_depth, 0).reshape(size)


def _rasterize_chunk(chunk, u, v, z, u0, v0, u1, spans, values, width, best_depth, best_value) -> None:
    """Test every pixel centre in the bounding boxes of the triangles in ``chunk``; keep the nearest."""
    spans = spans[chunk]
    triangle = np.repeat(np.arange(chunk.start, chunk.start + len(spans)), spans)
    if not len(triangle):
        return
    offset = np.arange(len(triangle)) - np.repeat(np.cumsum(spans) - spans, spans)
    box_width = (u1 - u0 + 1)[triangle]
    column = u0[triangle] + offset % box_width
    row = v0[triangle] + offset // box_width
    x = [u[triangle, k] for k in range(3)]
    y = [v[triangle, k] for k in range(3)]
    area = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0])
    weights = [
        ((x[(k + 1) % 3] - column) * (y[(k + 2) % 3] - row) - (x[(k + 2) % 3] - column) * (y[(k + 1) % 3] - row))
        / np.where(area == 0, np.inf, area)
        for k in range(3)
    ]
    inside = (weights[0] >= -1e-9) & (weights[1] >= -1e-9) & (weights[2] >= -1e-9) & (area != 0)
    inverse_depth = sum(w / z[triangle, k] for k, w in enumerate(weights))
    inside &= inverse_depth > 0
    pixel = (row * width + column)[inside]
    depth = 1.0 / inverse_depth[inside]
    order = np.lexsort((depth, pixel))
    pixel, depth, face = pixel[order], depth[order], triangle[inside][order]
    first = np.concatenate([[True], pixel[1:] != pixel[:-1]]) if len(pixel) else np.zeros(0, bool)
    pixel, depth, face = pixel[first], depth[first], face[first]
    nearer = depth < best_depth[pixel]
    best_depth[pixel[nearer]] = depth[nearer]
    best_value[pixel[nearer]] = values[face[nearer]]
