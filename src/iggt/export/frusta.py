"""Camera frusta as thin triangle meshes (seen in every glTF viewer, unlike line primitives)."""

from __future__ import annotations

import numpy as np

FIRST_CAMERA_COLOUR = np.array([230, 60, 60, 255], dtype=np.uint8)
"""The first camera defines the world frame; it stands out in red, the others are blue."""
OTHER_CAMERA_COLOUR = np.array([60, 120, 230, 255], dtype=np.uint8)


def frustum_segments(
    extrinsic: np.ndarray, intrinsic: np.ndarray, image_size: tuple[int, int], depth: float
) -> np.ndarray:
    """Edges of each camera's viewing pyramid, cut at ``depth`` in front of the camera.

    Args:
        extrinsic: (S, 3, 4) camera-from-world, OpenCV.
        intrinsic: (S, 3, 3) pixels.
        image_size: (H, W).
        depth: distance from the camera centre to the drawn image plane, along the optical axis.

    Returns:
        (S, 8, 2, 3) segment end points in the world frame: 4 from the centre to the image
        corners, then the 4 sides of the image rectangle; segment [:, 0, 0] starts at the centre.
    """
    height, width = image_size
    corners_px = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], float)
    rays = np.einsum("sij,kj->ski", np.linalg.inv(intrinsic.astype(np.float64)), corners_px)  # z = 1
    rotation, translation = extrinsic[:, :, :3].astype(np.float64), extrinsic[:, :, 3].astype(np.float64)
    # world = R^T (camera - t), for the centre (camera = 0) and the four corners
    centre = -np.einsum("sji,sj->si", rotation, translation)
    corners = np.einsum("sji,skj->ski", rotation, rays * depth - translation[:, None])
    to_corner = np.stack([np.repeat(centre[:, None], 4, 1), corners], 2)
    around = np.stack([corners, np.roll(corners, -1, axis=1)], 2)
    return np.concatenate([to_corner, around], 1)


def segments_to_mesh(segments: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2, 3) segments -> square prisms of half-width ``radius``: (8M, 3) vertices, (8M, 3) faces."""
    start, end = segments[:, 0], segments[:, 1]
    direction = end - start
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    helper = np.where(np.abs(direction[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    side = np.cross(direction, helper)
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    up = np.cross(direction, side)
    offsets = radius * np.stack([side, up, -side, -up], 1)  # (M, 4, 3) around each segment
    vertices = np.concatenate([start[:, None] + offsets, end[:, None] + offsets], 1)  # (M, 8, 3)
    k = np.arange(4)
    quad = np.stack(
        [np.stack([k, (k + 1) % 4, 4 + (k + 1) % 4], 1), np.stack([k, 4 + (k + 1) % 4, 4 + k], 1)], 1
    ).reshape(8, 3)
    faces = quad[None] + 8 * np.arange(len(segments))[:, None, None]
    return vertices.reshape(-1, 3), faces.reshape(-1, 3)
