"""Resizing and cropping views to the model's resolution with their intrinsics kept exact.

Pixel (u, v) is the ray through image coordinate (u, v), so an image of width W spans
[-0.5, W - 0.5]. Scaling by s maps x to s (x + 0.5) - 0.5: fx' = s fx, cx' = s (cx + 0.5) - 0.5.
Cropping shifts the principal point. Images are resampled with antialiased bilinear filtering;
depth and labels take the nearest source pixel (no blending across object borders).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _nearest_rows(count: int, offset: int, scale: float, source: int) -> torch.Tensor:
    """Source indices of output pixels offset .. offset + count - 1 of an image scaled by ``scale``."""
    positions = (torch.arange(count, dtype=torch.float64) + offset + 0.5) / scale
    return positions.floor().long().clamp(0, source - 1)


def resize_and_crop(
    images: torch.Tensor,
    depth: torch.Tensor,
    labels: list[torch.Tensor],
    intrinsic: torch.Tensor,
    target_size: tuple[int, int],
    crop_position: tuple[float, float] = (0.5, 0.5),
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Scale views to cover ``target_size`` (keeping the aspect ratio), then crop to it.

    Args:
        images: (S, H, W, 3) uint8.
        depth: (S, H, W) float32.
        labels: maps (S, H, W) of integers (instance IDs, class IDs).
        intrinsic: (S, 3, 3).
        target_size: (H', W').
        crop_position: where the crop sits in the scaled image, 0 = top/left, 1 = bottom/right.

    Returns:
        images (S, H', W', 3) uint8, depth (S, H', W'), labels (S, H', W'), intrinsic (S, 3, 3).
    """
    height, width = depth.shape[-2:]
    target_h, target_w = target_size
    scale = max(target_h / height, target_w / width)
    scaled_h, scaled_w = max(target_h, round(height * scale)), max(target_w, round(width * scale))
    scale_y, scale_x = scaled_h / height, scaled_w / width
    top = round((scaled_h - target_h) * crop_position[0])
    left = round((scaled_w - target_w) * crop_position[1])
    if (scaled_h, scaled_w) == (height, width):
        resized = images
    else:
        channels_first = images.permute(0, 3, 1, 2).float()
        resized = F.interpolate(
            channels_first, (scaled_h, scaled_w), mode="bilinear", antialias=True, align_corners=False
        )
        resized = resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    images = resized[:, top : top + target_h, left : left + target_w].contiguous()
    rows = _nearest_rows(target_h, top, scale_y, height)
    columns = _nearest_rows(target_w, left, scale_x, width)
    pick = (slice(None), rows[:, None], columns[None, :])
    intrinsic = intrinsic.clone().double()
    intrinsic[:, 0, 0] *= scale_x
    intrinsic[:, 1, 1] *= scale_y
    intrinsic[:, 0, 2] = scale_x * (intrinsic[:, 0, 2] + 0.5) - 0.5 - left
    intrinsic[:, 1, 2] = scale_y * (intrinsic[:, 1, 2] + 0.5) - 0.5 - top
    return images, depth[pick], [label[pick] for label in labels], intrinsic.float()
