"""The instance head's two window-attention refiners (official names `window_self_atten` and
`window_cross_attention`): one attention block over a feature grid, a LayerNorm, a residual 3x3
conv, then two 3x3 convs to the output width. Both accept grids of any size.

Both carry `relative_position_index_SA` although neither block reads it: the official checkpoint
stores it, so it stays a persistent buffer for strict loading.
"""

from collections import OrderedDict

import torch
from torch import nn

from iggt.model.layers.fused_conv_epilogue import conv2d
from iggt.model.layers.fused_token_norm import add_and_normalize, normalize
from iggt.model.layers.hat_blocks import HybridAttentionBlock, OverlappingCrossAttentionBlock
from iggt.model.layers.hat_windows import (
    overlapping_window_relative_position_index,
    window_relative_position_index,
)


class _RefinerTail(nn.Module):
    """Token LayerNorm in, and the convolutional tail shared by both refiners."""

    def __init__(self, dim: int, out_channels: int, hidden_channels: int, window_size: int) -> None:
        super().__init__()
        self.register_buffer("relative_position_index_SA", window_relative_position_index(window_size))
        # The reference wraps this LayerNorm in a patch embedding of patch size 1; the name keeps its key.
        self.patch_embed = nn.Sequential(OrderedDict(norm=nn.LayerNorm(dim)))
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, hidden_channels, 3, padding=1), nn.LeakyReLU())
        self.conv_last = nn.Conv2d(hidden_channels, out_channels, 3, padding=1)

    def _to_tokens(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> normalised (B, H*W, C)."""
        # Contiguous already for the channels-last maps of CUDA inference; eager LayerNorm copies otherwise too.
        return normalize(grid.flatten(2).transpose(1, 2).contiguous(), self.patch_embed.norm)

    def _finish(self, residual: torch.Tensor, branch: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The attention block's output, as its two terms (B, H*W, C), and the input grid (B, C, H, W)
        -> (B, C_out, H, W)."""
        _, body = add_and_normalize(residual, branch, self.norm, keep_sum=False, for_products=True)
        body = body.transpose(1, 2).reshape(grid.shape)
        refined = conv2d(body, self.conv_after_body, (grid,))
        conv, leaky_relu = self.conv_before_upsample
        hidden = conv2d(refined, conv, activation="leaky_relu", negative_slope=leaky_relu.negative_slope)
        return self.conv_last(hidden)


class WindowSelfAttention(_RefinerTail):
    """Window self-attention refiner: (B, C, H, W) -> (B, C_out, H, W)."""

    def __init__(
        self,
        dim: int,
        out_channels: int,
        num_heads: int = 4,
        window_size: int = 8,
        hidden_channels: int = 64,
        conv_compress_ratio: int = 3,
        channel_squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__(dim, out_channels, hidden_channels, window_size)
        self.atten_block = HybridAttentionBlock(
            dim,
            num_heads,
            window_size,
            conv_hidden_channels=dim // conv_compress_ratio,
            squeezed_channels=max(1, dim // channel_squeeze_factor),
            conv_scale=conv_scale,
            mlp_ratio=mlp_ratio,
            drop_path=drop_path,
        )

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        height, width = grid.shape[-2:]
        return self._finish(*self.atten_block.residual_and_branch(self._to_tokens(grid), height, width), grid)


class OverlappingWindowCrossAttention(_RefinerTail):
    """Overlapping-window cross-attention refiner: queries from `grid`, keys and values from
    `context`, both (B, C, H, W) -> (B, C_out, H, W).

    `reference_query_layout` reproduces the official query windowing (see
    `OverlappingCrossAttentionBlock`); False gives plain spatial query windows.
    """

    def __init__(
        self,
        dim: int,
        out_channels: int,
        num_heads: int = 4,
        window_size: int = 8,
        overlap_ratio: float = 0.5,
        hidden_channels: int = 64,
        mlp_ratio: float = 4.0,
        reference_query_layout: bool = True,
    ) -> None:
        super().__init__(dim, out_channels, hidden_channels, window_size)
        self.atten_block = OverlappingCrossAttentionBlock(
            dim, num_heads, window_size, overlap_ratio, mlp_ratio, reference_query_layout
        )
        index = overlapping_window_relative_position_index(window_size, self.atten_block.overlap_size)
        self.register_buffer("relative_position_index_OCA", index)

    def forward(self, grid: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        height, width = grid.shape[-2:]
        terms = self.atten_block.residual_and_branch(
            self._to_tokens(grid), self._to_tokens(context), height, width, self.relative_position_index_OCA
        )
        return self._finish(*terms, grid)
