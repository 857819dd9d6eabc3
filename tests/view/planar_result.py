"""A small made-up export folder for the viewer tests (and the viewer benchmark): S views of a wall
at depth 2 seen by cameras stepping along x, with square instances painted on the wall.

It goes through the real writers (:func:`iggt.export.export_all`), so the viewer reads what
`iggt reconstruct` writes, without running a network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from iggt.geometry import depth_to_world_points
from result_folder import write_result

WALL_DEPTH = 2.0
CAMERA_STEP = 0.1


def planar_result(
    folder: Path,
    views: int = 3,
    height: int = 32,
    width: int = 48,
    block: int = 8,
    formats: tuple[str, ...] = ("npz", "json", "masks", "ply"),
) -> Path:
    """Write the scene to ``folder`` (which must not exist or be empty) and return it."""
    rng = np.random.default_rng(0)
    intrinsic = np.tile(np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float32), (views, 1, 1))
    extrinsic = np.tile(np.eye(3, 4, dtype=np.float32), (views, 1, 1))
    extrinsic[:, 0, 3] = -CAMERA_STEP * np.arange(views)  # camera s stands at x = 0.1 s
    depth = np.full((views, height, width), WALL_DEPTH, np.float32)
    points = (
        depth_to_world_points(
            torch.from_numpy(depth).double(), torch.from_numpy(intrinsic).double(), torch.from_numpy(extrinsic).double()
        )
        .float()
        .numpy()
    )
    rows, columns = np.mgrid[:height, :width]
    blocks_per_row = width // block
    labels = np.stack([1 + (rows // block) * blocks_per_row + (columns + 2 * s) // block for s in range(views)])
    labels[:, :block] = 0  # the top band is background
    labels = np.where((columns + 2 * np.arange(views)[:, None, None]) // block < blocks_per_row, labels, 0)
    ids = np.unique(labels[labels > 0])
    centres = rng.normal(size=(ids.max() + 1, 8))
    features = centres[labels] + 0.05 * rng.normal(size=(*labels.shape, 8))
    features = (features / np.linalg.norm(features, axis=-1, keepdims=True)).astype(np.float32)
    shade = np.broadcast_to(rows / height, labels.shape), np.broadcast_to(columns / width, labels.shape)
    images = np.stack([*shade, 0.3 + 0.4 * (labels % 2)], -1).astype(np.float32)
    confidence = 1 + rng.random((views, height, width)).astype(np.float32)
    write_result(
        folder,
        images=images,
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        depth=depth,
        points=points,
        confidence=confidence,
        features=features,
        labels=labels.astype(np.int32),
        pose_enc=np.zeros((views, 9), np.float32),
        formats=formats,
    )
    return folder
