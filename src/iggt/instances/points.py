"""Which 3D points and confidences stand for the pixels of a prediction, and which are confident."""

from __future__ import annotations

import numpy as np
import torch

from iggt.errors import ConfigError
from iggt.geometry import depth_to_world_points
from iggt.instances.config import POINT_SOURCES
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
    raise ConfigError(f"unknown point source {source!r}; use {' or '.join(map(repr, POINT_SOURCES))}")


def confident_pixels(
    confidence: np.ndarray, valid: np.ndarray, quantile: float, threshold: float = -np.inf
) -> np.ndarray:
    """The confidence cut: (N,) bool, the ``valid`` pixels whose confidence reaches both the
    ``quantile`` of the valid pixels' confidences and ``threshold``; none when none is valid.

    Args:
        confidence: (N,) confidences (any values where not ``valid``).
        valid: (N,) bool pixels taking part (e.g. finite point and confidence).
        quantile: in [0, 1): the least confident fraction of the valid pixels is left out.
        threshold: an absolute lower bound besides the quantile.
    """
    if not valid.any():
        return np.zeros(valid.shape, bool)
    cut = max(float(np.quantile(confidence[valid], quantile)), threshold)
    return valid & (confidence >= cut)
