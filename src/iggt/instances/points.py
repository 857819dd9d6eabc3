"""Which 3D points and confidences stand for the pixels of a prediction."""

from __future__ import annotations

import numpy as np
import torch

from iggt.errors import ConfigError
from iggt.geometry import depth_to_world_points
from iggt.structures import Predictions


def scene_points(predictions: Predictions, source: str = "world_points") -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel world points and their confidence.

    Args:
        predictions: the network outputs of S views at H x W.
        source: "world_points" (the point head, with ``world_points_conf``) or "depth" (the depth
            head unprojected with the predicted cameras, with ``depth_conf``).

    Returns:
        (S, H, W, 3) float32 points in the world (first camera) frame and (S, H, W) float32 confidence.
    """
    if source == "world_points":
        return np.asarray(predictions.world_points, np.float32), np.asarray(predictions.world_points_conf, np.float32)
    if source == "depth":
        points = depth_to_world_points(
            torch.from_numpy(predictions.depth).double(),
            torch.from_numpy(predictions.intrinsic).double(),
            torch.from_numpy(predictions.extrinsic).double(),
        )
        return points.float().numpy(), np.asarray(predictions.depth_conf, np.float32)
    raise ConfigError(f"unknown point source {source!r}; use 'world_points' or 'depth'")
