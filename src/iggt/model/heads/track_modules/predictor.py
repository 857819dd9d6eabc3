"""Iterative track refinement (VGGT's BaseTrackerPredictor): starting at the query positions in
every frame, each iteration looks up correlations around the current positions, runs the update
transformer and moves the positions and track features by its output.
"""

import torch
from torch import nn

from iggt.model.heads.track_modules.correlation import CorrelationPyramid
from iggt.model.heads.track_modules.sampling import (
    flow_embedding,
    grid_position_embedding,
    sample_point_features,
)
from iggt.model.heads.track_modules.update_former import EfficientUpdateFormer, FeedForward


class TrackPredictor(nn.Module):
    """Tracks query points of frame 0 through (B, S, C, H', W') feature maps.

    Args:
        latent_dim: channels C of the feature maps and of the track features.
        hidden_size: width of the update transformer and of the correlation MLP.
        stride: image pixels per feature-map pixel.
        corr_levels, corr_radius: correlation pyramid levels and lookup radius.
        depth: blocks of the update transformer.
        num_heads: heads of the update transformer.
        num_virtual_tracks: learned tracks that carry attention across tracks.
        max_scale: divisor of the raw displacement appended to its embedding.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        hidden_size: int = 384,
        stride: int = 2,
        corr_levels: int = 7,
        corr_radius: int = 4,
        depth: int = 6,
        num_heads: int = 8,
        num_virtual_tracks: int = 64,
        max_scale: float = 518.0,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.stride = stride
        self.corr_levels = corr_levels
        self.corr_radius = corr_radius
        self.max_scale = max_scale
        self.corr_mlp = FeedForward(corr_levels * (2 * corr_radius + 1) ** 2, hidden_size, latent_dim)
        # flow embedding (latent_dim + 2 raw-displacement pairs), correlations, track features.
        self.transformer_dim = 3 * latent_dim + 4
        self.query_ref_token = nn.Parameter(torch.randn(1, 2, self.transformer_dim))
        self.updateformer = EfficientUpdateFormer(
            self.transformer_dim,
            hidden_size,
            latent_dim + 2,
            num_heads=num_heads,
            depth=depth,
            num_virtual_tracks=num_virtual_tracks,
        )
        self.fmap_norm = nn.LayerNorm(latent_dim)
        self.ffeat_norm = nn.GroupNorm(1, latent_dim)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent_dim, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(latent_dim, 1))

    def forward(
        self, query_points: torch.Tensor, feature_maps: torch.Tensor, iterations: int
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Track (B, N, 2) image-pixel query points (x, y) of frame 0.

        Returns:
            positions after each iteration, each (B, S, N, 2) image pixels (frame 0 = the queries);
            visibility (B, S, N) and confidence (B, S, N), both in (0, 1).
        """
        batch, frames = feature_maps.shape[:2]
        tracks = query_points.shape[1]
        feature_maps = self.fmap_norm(feature_maps.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3)
        queries = (query_points / self.stride).unsqueeze(1)  # (B, 1, N, 2) feature-map pixels
        coords = queries.expand(batch, frames, tracks, 2)
        track_features = sample_point_features(feature_maps[:, 0], queries[:, 0]).unsqueeze(1)
        track_features = track_features.expand(batch, frames, tracks, self.latent_dim)
        pyramid = CorrelationPyramid(feature_maps, self.corr_levels, self.corr_radius)
        position_tokens = self._query_position_tokens(queries[:, 0], feature_maps.shape[-2:], frames)
        positions = []
        for _ in range(iterations):
            coords = coords.detach()
            tokens = self._tokens(pyramid, track_features, coords) + position_tokens
            delta = self.updateformer(tokens.unflatten(0, (batch, tracks))).transpose(1, 2)  # (B, S, N, C + 2)
            track_features = track_features + self.ffeat_updater(
                self.ffeat_norm(delta[..., 2:].reshape(-1, self.latent_dim))
            ).view(track_features.shape)
            coords = coords + delta[..., :2]
            coords = torch.cat([queries, coords[:, 1:]], 1)  # frame 0 stays at the query
            positions.append(coords * self.stride)
        visibility = torch.sigmoid(self.vis_predictor(track_features)[..., 0])
        confidence = torch.sigmoid(self.conf_predictor(track_features)[..., 0])
        return positions, visibility, confidence

    def _tokens(self, pyramid: CorrelationPyramid, track_features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """(B*N, S, transformer_dim) inputs: flow embedding, correlation features, track features."""
        correlations = self.corr_mlp(pyramid.sample(track_features, coords).transpose(1, 2).flatten(0, 1))
        flows = (coords - coords[:, :1]).transpose(1, 2).flatten(0, 1)
        flows = torch.cat(
            [flow_embedding(flows, self.latent_dim // 2), flows / self.max_scale, flows / self.max_scale], -1
        )
        return torch.cat([flows, correlations, track_features.transpose(1, 2).flatten(0, 1)], -1)

    def _query_position_tokens(self, queries: torch.Tensor, map_size: torch.Size, frames: int) -> torch.Tensor:
        """(B*N, S, transformer_dim): the queries' grid position embedding, plus the reference-frame
        token on frame 0 and the other-frame token elsewhere."""
        embedding = grid_position_embedding(self.transformer_dim, *map_size).to(queries.device, queries.dtype)
        sampled = sample_point_features(embedding.expand(queries.shape[0], -1, -1, -1), queries)
        frame_tokens = torch.cat(
            [self.query_ref_token[:, :1], self.query_ref_token[:, 1:].expand(-1, frames - 1, -1)], 1
        )
        return sampled.flatten(0, 1).unsqueeze(1) + frame_tokens.to(queries.dtype)
