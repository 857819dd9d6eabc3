"""Point-tracking head (VGGT): a feature-only DPT head makes (B, S, C, H/2, W/2) feature maps from
the trunk layers, and the iterative tracker follows query points of the first frame through them.
"""

from collections.abc import Sequence

import torch
from torch import nn

from iggt.errors import InputError
from iggt.model.heads.dpt_head import DPTHead
from iggt.model.heads.track_modules.predictor import TrackPredictor


class TrackHead(nn.Module):
    """Tracks of query points through all frames.

    Args:
        dim_in: trunk token width (2 x the trunk embedding).
        patch_size: trunk patch size.
        features: channels of the tracking feature maps.
        iters: default number of refinement iterations.
        stride: image pixels per feature-map pixel (the feature maps are at half resolution).
        corr_levels, corr_radius: correlation pyramid levels and lookup radius; the feature maps
            must be at least 2**(corr_levels - 1) pixels on each side.
        hidden_size: width of the tracker's update transformer.
        depth, num_heads, num_virtual_tracks: update transformer blocks, heads and virtual tracks.
        projection_channels: widths of the feature extractor's four token projections.
        max_scale: divisor of the raw displacement fed to the tracker (official 518).
    """

    def __init__(
        self,
        dim_in: int,
        patch_size: int = 14,
        features: int = 128,
        iters: int = 4,
        stride: int = 2,
        corr_levels: int = 7,
        corr_radius: int = 4,
        hidden_size: int = 384,
        depth: int = 6,
        num_heads: int = 8,
        num_virtual_tracks: int = 64,
        projection_channels: Sequence[int] = (256, 512, 1024, 1024),
        max_scale: float = 518.0,
    ) -> None:
        super().__init__()
        self.iters = iters
        self.stride = stride
        self.corr_levels = corr_levels
        self.feature_extractor = DPTHead(
            dim_in,
            patch_size=patch_size,
            features=features,
            out_channels=projection_channels,
            pos_embed=False,
            feature_only=True,
            down_ratio=stride,
        )
        self.tracker = TrackPredictor(
            latent_dim=features,
            hidden_size=hidden_size,
            stride=stride,
            corr_levels=corr_levels,
            corr_radius=corr_radius,
            depth=depth,
            num_heads=num_heads,
            num_virtual_tracks=num_virtual_tracks,
            max_scale=max_scale,
        )

    def forward(
        self,
        tokens: list[torch.Tensor],
        images: torch.Tensor,
        patch_start_idx: int,
        query_points: torch.Tensor,
        iters: int | None = None,
        frames_chunk_size: int | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Track query points of frame 0 through all S frames.

        Args:
            tokens: the 4 trunk layers the DPT heads read (official blocks 4, 11, 17, 23), each
                (B, S, patch_start_idx + h*w, dim_in).
            images: (B, S, 3, H, W); only its shape is read.
            patch_start_idx: index of the first patch token.
            query_points: (B, N, 2) pixel coordinates (x, y) in frame 0.
            iters: refinement iterations (default `self.iters`).
            frames_chunk_size: extract feature maps this many frames at a time (None: all at once).

        Returns:
            track_list: per iteration (B, S, N, 2) pixel positions (x, y); the last is the answer.
            vis: (B, S, N) visibility in (0, 1).
            conf: (B, S, N) confidence in (0, 1).
        """
        if query_points.ndim != 3 or query_points.shape[-1] != 2:
            raise InputError(f"query_points has shape {tuple(query_points.shape)}; pass (B, N, 2) pixels (x, y)")
        minimum_side = self.stride * 2 ** (self.corr_levels - 1)
        if min(images.shape[-2:]) < minimum_side:
            raise InputError(
                f"images {tuple(images.shape[-2:])} are too small for {self.corr_levels} correlation levels; "
                f"use at least {minimum_side} pixels per side or fewer corr_levels"
            )
        feature_maps = self._feature_maps(tokens, images, patch_start_idx, frames_chunk_size)
        return self.tracker(query_points, feature_maps, self.iters if iters is None else iters)

    def _feature_maps(
        self, tokens: list[torch.Tensor], images: torch.Tensor, patch_start_idx: int, chunk: int | None
    ) -> torch.Tensor:
        """(B, S, features, H / stride, W / stride)."""
        frames = images.shape[1]
        chunk = chunk or frames
        pieces = [
            self.feature_extractor(
                [layer[:, start : start + chunk] for layer in tokens],
                images[:, start : start + chunk],
                patch_start_idx,
            )
            for start in range(0, frames, chunk)
        ]
        return torch.cat(pieces, 1)
