"""Multi-scale correlation lookup around the current track positions (RAFT/CoTracker style).

The feature maps are average-pooled into a pyramid once; at each lookup the correlation of the
track features with one level is computed, sampled on a (2r+1) x (2r+1) neighbourhood of the
track position and discarded, so the full correlation volume is never stored.
"""

import math

import torch
import torch.nn.functional as F

from iggt.model.heads.track_modules.sampling import bilinear_sample


class CorrelationPyramid:
    """Feature pyramid of (B, S, C, H, W) maps; level i is pooled by 2**i."""

    def __init__(self, feature_maps: torch.Tensor, levels: int, radius: int) -> None:
        self.radius = radius
        self.pyramid = [feature_maps]
        for _ in range(levels - 1):
            batch, frames = feature_maps.shape[:2]
            feature_maps = F.avg_pool2d(feature_maps.flatten(0, 1), kernel_size=2, stride=2)
            feature_maps = feature_maps.unflatten(0, (batch, frames))
            self.pyramid.append(feature_maps)
        steps = torch.linspace(-radius, radius, 2 * radius + 1, device=feature_maps.device, dtype=feature_maps.dtype)
        # (2r+1, 2r+1, 2); entry [a, b] = (steps[a], steps[b]) is added to (x, y), the reference's order.
        self.offsets = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), -1)

    def sample(self, track_features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """(B, S, N, C) track features, (B, S, N, 2) level-0 pixel coords -> (B, S, N, levels * (2r+1)**2)."""
        batch, frames, tracks, channels = track_features.shape
        side = 2 * self.radius + 1
        sampled = []
        for level, maps in enumerate(self.pyramid):
            height, width = maps.shape[-2:]
            correlation = track_features @ maps.reshape(batch, frames, channels, height * width)
            correlation = (correlation / math.sqrt(channels)).reshape(-1, 1, height, width)
            centres = coords.reshape(-1, 1, 1, 2) / 2**level
            window = centres + self.offsets.to(coords.dtype).view(1, side, side, 2)
            sampled.append(bilinear_sample(correlation, window, padding_mode="zeros").view(batch, frames, tracks, -1))
        return torch.cat(sampled, -1)
