"""Writing a hand-built result folder: Predictions from given arrays, instances lifted from given
labels, exported as ``iggt reconstruct`` would. Shared by the task and viewer test scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iggt.export import export_all
from iggt.instances import lift_instances
from iggt.structures import Instances, Predictions


def write_result(
    folder: Path,
    *,
    images: np.ndarray,
    extrinsic: np.ndarray,
    intrinsic: np.ndarray,
    depth: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    features: np.ndarray,
    labels: np.ndarray,
    pose_enc: np.ndarray,
    formats: tuple[str, ...],
) -> tuple[Predictions, Instances]:
    """Export (S, H, W, ...) arrays into ``folder``; ``confidence`` serves depth and points alike."""
    predictions = Predictions(
        images=images,
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        depth=depth,
        depth_conf=confidence,
        world_points=points,
        world_points_conf=confidence,
        instance_feat=features,
        pose_enc=pose_enc,
    )
    instances = lift_instances(labels, points, confidence, features)
    export_all(predictions, instances, folder, formats=formats)
    return predictions, instances
