"""Choosing which frames of a scene form one training sample: views that see common surfaces.

Co-visibility is measured, not guessed: points of view i (from its depth, on a coarse pixel grid)
are projected into view j and count as seen when they land inside j in front of it at the depth
j itself measured there (so occluded points do not count).
"""

from __future__ import annotations

import numpy as np
import torch

from iggt.errors import ConfigError
from iggt.geometry import depth_to_world_points, project_points


def covisibility(
    depth: torch.Tensor, intrinsic: torch.Tensor, extrinsic: torch.Tensor, stride: int = 8, tolerance: float = 0.05
) -> torch.Tensor:
    """(N, N) fraction of view i's valid sampled points that view j also sees (diagonal = 1).

    Args:
        depth: (N, H, W) z-depth, 0 where invalid.
        intrinsic: (N, 3, 3) pixels.  extrinsic: (N, 3, 4) camera-from-world.
        stride: sample every stride-th pixel of each view.
        tolerance: relative depth difference still counted as the same surface.
    """
    num_frames, height, width = depth.shape
    sampled = depth[:, ::stride, ::stride]
    coarse = intrinsic.clone()
    coarse[:, :2] /= stride  # pixel (u, v) of the coarse grid is pixel (stride u, stride v)
    points = depth_to_world_points(sampled, coarse, extrinsic).reshape(num_frames, -1, 3)
    valid = (sampled > 0).reshape(num_frames, -1)
    result = torch.zeros(num_frames, num_frames, dtype=torch.float32)
    for i in range(num_frames):
        uv, z = project_points(points[i].expand(num_frames, -1, -1), intrinsic, extrinsic)
        column, row = uv[..., 0].round().long(), uv[..., 1].round().long()
        inside = (z > 0) & (column >= 0) & (column < width) & (row >= 0) & (row < height)
        frames = torch.arange(num_frames)[:, None].expand_as(column)
        measured = depth[frames, row.clamp(0, height - 1), column.clamp(0, width - 1)]
        seen = inside & valid[i] & (measured > 0) & ((z - measured).abs() <= tolerance * measured)
        result[i] = seen.sum(-1) / valid[i].sum().clamp_min(1)
    return result


def sample_overlapping_views(
    overlap: np.ndarray, num_views: int, rng: np.random.Generator, min_overlap: float = 0.1
) -> list[int]:
    """Pick ``num_views`` distinct frames: a random anchor first, then frames overlapping it.

    Frames whose mutual co-visibility with the anchor (the smaller of both directions) reaches
    ``min_overlap`` are drawn at random; if too few do, the best-overlapping others fill up.
    """
    num_frames = len(overlap)
    if num_views > num_frames:
        raise ConfigError(f"cannot pick {num_views} distinct views from {num_frames} frames; lower the view count")
    anchor = int(rng.integers(num_frames))
    mutual = np.minimum(overlap[anchor], overlap[:, anchor])
    others = np.array([j for j in range(num_frames) if j != anchor], dtype=np.int64)
    good = others[mutual[others] >= min_overlap]
    if len(good) >= num_views - 1:
        chosen = rng.choice(good, num_views - 1, replace=False)
    else:
        rest = others[mutual[others] < min_overlap]
        best_rest = rest[np.argsort(-mutual[rest], kind="stable")][: num_views - 1 - len(good)]
        chosen = rng.permutation(np.concatenate([good, best_rest]))
    return [anchor, *(int(j) for j in chosen)]


def sample_sequential_views(
    num_frames: int, num_views: int, rng: np.random.Generator, max_stride: int = 3
) -> list[int]:
    """Pick ``num_views`` frames at a random constant stride (<= max_stride) from a random start."""
    if num_views > num_frames:
        raise ConfigError(f"cannot pick {num_views} distinct views from {num_frames} frames; lower the view count")
    largest = max(1, min(max_stride, (num_frames - 1) // max(num_views - 1, 1)))
    stride = int(rng.integers(1, largest + 1))
    start = int(rng.integers(0, num_frames - stride * (num_views - 1)))
    return [start + stride * k for k in range(num_views)]
