"""Other tools' conventions, converted from ours: glTF's frame and COLMAP's pixel centres.

Ours: OpenCV cameras (x right, y down, z forward), and the centre of the top-left pixel is (0, 0).

- glTF is y up with cameras looking along -z. A rotation by 180 degrees about x,
  ``(x, y, z) -> (x, -y, -z)``, takes our first camera to a glTF camera looking along -z with y up;
  lengths and handedness are unchanged.
- COLMAP puts the centre of the top-left pixel at (0.5, 0.5): principal points and 2D
  observations move by +0.5 pixel, so that COLMAP projects each 3D point where we do.
"""

from __future__ import annotations

import numpy as np

OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0])
"""Rotation by 180 degrees about x: OpenCV (y down, z forward) -> glTF (y up, -z forward)."""

COLMAP_PIXEL_OFFSET = 0.5
"""COLMAP image coordinate of the centre of the pixel that iggt calls 0."""


def opencv_to_gltf(points: np.ndarray) -> np.ndarray:
    """(..., 3) points in an OpenCV-convention frame -> (..., 3) float64 in the glTF convention."""
    return points @ OPENCV_TO_GLTF.T


def pixels_to_colmap(uv: np.ndarray) -> np.ndarray:
    """(..., 2) pixel coordinates (u, v) -> (..., 2) float64 COLMAP image coordinates."""
    return np.asarray(uv, dtype=np.float64) + COLMAP_PIXEL_OFFSET


def colmap_pinhole_params(intrinsic: np.ndarray) -> list[float]:
    """(3, 3) intrinsics in pixels -> COLMAP PINHOLE parameters [fx, fy, cx, cy] in its convention."""
    fx, fy = float(intrinsic[0, 0]), float(intrinsic[1, 1])
    return [fx, fy, float(intrinsic[0, 2]) + COLMAP_PIXEL_OFFSET, float(intrinsic[1, 2]) + COLMAP_PIXEL_OFFSET]
