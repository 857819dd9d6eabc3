"""Resizing and cropping views to the model's resolution with their intrinsics kept exact.

Pixels and intrinsics follow the one resize/crop pixel mapping of :mod:`iggt.geometry.resize`
(scaling by s maps coordinate x to s (x + 0.5) - 0.5, the crop then shifts it). Images are
resampled with antialiased bilinear filtering; depth and labels take the nearest source pixel
(no blending across object borders).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iggt.geometry.resize import nearest_original_pixel, resize_intrinsics


def _nearest_rows(count: int, crop_start: int, scale: float, source: int) -> torch.Tensor:
    """Source indices of output pixels 0 .. count - 1 of an image scaled by ``scale`` and cropped
    from its pixel ``crop_start`` on (nearest pixel centre, clamped to the source)."""
    targets = torch.arange(count, dtype=torch.float64)
    return nearest_original_pixel(targets, scale, -crop_start).clamp(0, source - 1)


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
    intrinsic = resize_intrinsics(intrinsic.double(), scale_x, scale_y, -left, -top)
    return images, depth[pick], [label[pick] for label in labels], intrinsic.float()
