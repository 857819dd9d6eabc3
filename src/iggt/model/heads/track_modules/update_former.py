"""The tracker's transformer: attention along time per track, and across tracks through a small
set of learned virtual tracks (CoTracker's EfficientUpdateFormer).

Attribute names follow the official checkpoint (including its spelling `virual_tracks`).
"""

import torch
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    """Two-layer GELU MLP on the last dimension."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class AttentionBlock(nn.Module):
    """Self-attention + MLP; (N, L, C) -> (N, L, C). The residual starts from the normed input
    (the reference's order)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x)
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class CrossAttentionBlock(nn.Module):
    """Cross-attention from (N, L, C) tokens to (N, L', C) context + MLP -> (N, L, C)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x)
        context = self.norm_context(context)
        x = x + self.cross_attn(x, context, context, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class EfficientUpdateFormer(nn.Module):
    """(B, N, S, input_dim) track tokens -> (B, N, S, output_dim) updates."""

    def __init__(
        self,
        input_dim: int,
        hidden_size: int = 384,
        output_dim: int = 130,
        num_heads: int = 8,
        depth: int = 6,
        mlp_ratio: float = 4.0,
        num_virtual_tracks: int = 64,
    ) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hidden_size)
        self.output_norm = nn.LayerNorm(hidden_size)
        self.flow_head = nn.Linear(hidden_size, output_dim)
        self.virual_tracks = nn.Parameter(torch.randn(1, num_virtual_tracks, 1, hidden_size))
        self.time_blocks = nn.ModuleList(AttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.space_virtual_blocks = nn.ModuleList(
            AttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.space_point2virtual_blocks = nn.ModuleList(
            CrossAttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.space_virtual2point_blocks = nn.ModuleList(
            CrossAttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)
        )
        self._initialise()

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.flow_head.weight, std=0.001)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.input_transform(self.input_norm(tokens))
        initial = tokens
        batch, tracks, frames, channels = tokens.shape
        tokens = torch.cat([tokens, self.virual_tracks.expand(batch, -1, frames, -1)], 1)
        for time_block, to_virtual, virtual_block, to_points in zip(
            self.time_blocks,
            self.space_virtual2point_blocks,
            self.space_virtual_blocks,
            self.space_point2virtual_blocks,
            strict=True,
        ):
            tokens = time_block(tokens.flatten(0, 1)).unflatten(0, (batch, -1))
            space = tokens.transpose(1, 2).flatten(0, 1)  # (B*S, N + virtual, C)
            points, virtual = space[:, :tracks], space[:, tracks:]
            virtual = virtual_block(to_virtual(virtual, points))
            points = to_points(points, virtual)
            tokens = torch.cat([points, virtual], 1).unflatten(0, (batch, frames)).transpose(1, 2)
        return self.flow_head(self.output_norm(tokens[:, :tracks] + initial))
