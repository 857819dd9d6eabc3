"""The IGGT training objective: L = L_pose + L_depth + L_pmap + lambda * L_mvc.

Each term is defined in :mod:`iggt.train.geometry_losses` (VGGT's camera, depth and point
losses) and :mod:`iggt.train.contrastive` (the multi-view contrastive loss); this module combines
them over a model output and a batch (docs/architecture.md, "Training batch contract").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from iggt.train.contrastive import (
    ContrastiveLossConfig,
    ContrastiveSamplingConfig,
    multi_view_contrastive_loss,
)
from iggt.train.geometry_losses import (
    CameraLossConfig,
    DenseLossConfig,
    camera_loss,
    confidence_regression_loss,
)

__all__ = [
    "CameraLossConfig",
    "ContrastiveLossConfig",
    "ContrastiveSamplingConfig",
    "DenseLossConfig",
    "LossConfig",
    "camera_loss",
    "confidence_regression_loss",
    "multi_view_contrastive_loss",
    "total_loss",
]


@dataclass
class LossConfig:
    """Weights and settings of every term; a term whose weight is 0 is skipped."""

    camera: CameraLossConfig = field(default_factory=CameraLossConfig)
    depth: DenseLossConfig = field(default_factory=DenseLossConfig)
    points: DenseLossConfig = field(default_factory=DenseLossConfig)
    contrastive: ContrastiveLossConfig = field(default_factory=ContrastiveLossConfig)


def total_loss(
    predictions: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], config: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted sum of all terms.

    Args:
        predictions: the model's training output (pose_enc_list, depth (B, S, H, W, 1), depth_conf,
            world_points (B, S, H, W, 3), world_points_conf, instance_feat (B, S, H, W, C)).
        batch: the training batch (depth (B, S, H, W), extrinsic, intrinsic, world_points,
            valid_mask, instance_ids).

    Returns:
        (scalar loss, detached components: "loss", "loss_camera", "loss_depth", "loss_points",
        "loss_mvc" (each weighted) and every term's unweighted parts).
    """
    valid = batch["valid_mask"]
    terms: dict[str, torch.Tensor] = {}
    logged: dict[str, torch.Tensor] = {}
    if config.camera.weight:
        terms["camera"], parts = camera_loss(
            predictions["pose_enc_list"], batch["extrinsic"], batch["intrinsic"], valid, config.camera
        )
        logged.update(parts)
    if config.depth.weight:
        terms["depth"], parts = confidence_regression_loss(
            predictions["depth"],
            batch["depth"][..., None],
            predictions["depth_conf"],
            valid,
            config.depth,
            "depth",
        )
        logged.update(parts)
    if config.points.weight:
        terms["points"], parts = confidence_regression_loss(
            predictions["world_points"],
            batch["world_points"],
            predictions["world_points_conf"],
            valid,
            config.points,
            "points",
        )
        logged.update(parts)
    if config.contrastive.weight:
        terms["mvc"], parts = multi_view_contrastive_loss(
            predictions["instance_feat"], batch["instance_ids"], config.contrastive
        )
        logged.update(parts)
    loss = torch.stack(list(terms.values())).sum()
    logged.update({f"loss_{name}": value.detach() for name, value in terms.items()})
    logged["loss"] = loss.detach()
    return loss, logged
