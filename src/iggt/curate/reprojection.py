"""Which pixels of one frame are seen again by another: reprojection through depth and pose with an
occlusion test.

A pixel of frame i with valid depth is lifted to the world, projected into frame j and kept when it
lands inside the image, in front of the camera, and at a depth that agrees with frame j's own depth
there (relative difference at most ``depth_tolerance``). A point hidden behind a nearer surface in
frame j fails the depth test, so occluded pixels never count as seen.
"""

from __future__ import annotations

import numpy as np
import torch

from iggt.geometry import depth_to_world_points, project_points


def world_points(depth: np.ndarray, intrinsic: np.ndarray, extrinsic: np.ndarray) -> np.ndarray:
    """(S, H, W) depth, (S, 3, 3), (S, 3, 4) camera-from-world -> (S, H, W, 3) float64 world points."""
    points = depth_to_world_points(
        torch.from_numpy(depth.astype(np.float64)),
        torch.from_numpy(intrinsic.astype(np.float64)),
        torch.from_numpy(extrinsic.astype(np.float64)),
    )
    return points.numpy()


def seen_again(
    points: np.ndarray,
    target_depth: np.ndarray,
    target_intrinsic: np.ndarray,
    target_extrinsic: np.ndarray,
    depth_tolerance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Which of N world points a target frame sees, and at which of its pixels.

    Args:
        points: (N, 3) world points.
        target_depth: (H, W) z-depth of the target frame, 0 = invalid.
        target_intrinsic: (3, 3); target_extrinsic: (3, 4) camera-from-world.
        depth_tolerance: largest relative depth difference of a point seen (not occluded).

    Returns:
        kept: (M,) indices into ``points``; pixels: (M,) flat pixel indices (row * W + column) in the target.
    """
    height, width = target_depth.shape
    uv, z = project_points(
        torch.from_numpy(points),
        torch.from_numpy(target_intrinsic.astype(np.float64)),
        torch.from_numpy(target_extrinsic.astype(np.float64)),
    )
    uv, z = uv.numpy(), z.numpy()
    columns, rows = np.rint(uv[:, 0]), np.rint(uv[:, 1])
    inside = (z > 0) & (columns >= 0) & (columns < width) & (rows >= 0) & (rows < height)
    kept = np.flatnonzero(inside)
    pixels = rows[kept].astype(np.int64) * width + columns[kept].astype(np.int64)
    sensor = target_depth.reshape(-1)[pixels]
    agrees = (sensor > 0) & (np.abs(z[kept] - sensor) <= depth_tolerance * sensor)
    return kept[agrees], pixels[agrees]
