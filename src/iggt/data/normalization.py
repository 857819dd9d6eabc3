"""Scene normalisation for training: first camera's frame, mean distance of valid points = 1.

This is how VGGT and IGGT express ground truth: cameras relative to the first view (whose
extrinsic becomes exactly the identity) and one scale per scene such that the valid world points
lie at mean distance 1 from the first camera's centre. Intrinsics are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from iggt.errors import InputError
from iggt.geometry import depth_to_world_points, inverse_se3, to_homogeneous_matrix


@dataclass
class NormalizedGeometry:
    """Normalised geometry of B scenes of S views.

    Attributes:
        depth: (B, S, H, W) float32 z-depth / scale, 0 where invalid.
        extrinsic: (B, S, 3, 4) float32 camera-from-first-camera, translation / scale.
        world_points: (B, S, H, W, 3) float32 points in the first camera's frame / scale, 0 where invalid.
        valid_mask: (B, S, H, W) bool, depth > 0 and finite.
        scale: (B,) float32 the metric length that became 1.
    """

    depth: torch.Tensor
    extrinsic: torch.Tensor
    world_points: torch.Tensor
    valid_mask: torch.Tensor
    scale: torch.Tensor


def relative_to_first_camera(extrinsic: torch.Tensor) -> torch.Tensor:
    """(B, S, 3, 4) camera-from-world -> (B, S, 3, 4) camera-from-first-camera (first = identity).

    Composed in float64 so the relative poses carry no float32 round-off from large world offsets.
    """
    homogeneous = to_homogeneous_matrix(extrinsic.double())
    world_from_first = inverse_se3(homogeneous[:, 0])
    relative = (homogeneous @ world_from_first[:, None])[..., :3, :]
    relative[:, 0] = torch.eye(3, 4, dtype=relative.dtype, device=relative.device)
    return relative.to(extrinsic.dtype)


def normalize_geometry(depth: torch.Tensor, intrinsic: torch.Tensor, extrinsic: torch.Tensor) -> NormalizedGeometry:
    """Normalise B scenes: depth (B, S, H, W), intrinsic (B, S, 3, 3), extrinsic (B, S, 3, 4).

    A scene without any valid depth keeps scale 1.
    """
    if depth.ndim != 4 or intrinsic.shape[:2] != depth.shape[:2] or extrinsic.shape[:2] != depth.shape[:2]:
        raise InputError(
            f"expected depth (B, S, H, W) and cameras (B, S, ...), got {tuple(depth.shape)}, "
            f"{tuple(intrinsic.shape)}, {tuple(extrinsic.shape)}"
        )
    valid = torch.isfinite(depth) & (depth > 0)
    depth = torch.where(valid, depth, 0.0).float()
    relative = relative_to_first_camera(extrinsic.float())
    points = depth_to_world_points(depth, intrinsic.float(), relative)
    count = valid.sum((1, 2, 3))
    total = (points.norm(dim=-1) * valid).sum((1, 2, 3))
    scale = torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total)).clamp_min(1e-6)
    relative[..., 3] = relative[..., 3] / scale[:, None, None]
    points = torch.where(valid[..., None], points / scale[:, None, None, None, None], 0.0)
    return NormalizedGeometry(
        depth=depth / scale[:, None, None, None],
        extrinsic=relative,
        world_points=points,
        valid_mask=valid,
        scale=scale,
    )
