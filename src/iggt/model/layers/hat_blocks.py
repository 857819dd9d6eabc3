"""Blocks of the instance head's window attention, after HAT (Chen et al., "Activating More Pixels in
Image Super-Resolution Transformer"): a hybrid block (window self-attention + channel attention)
and an overlapping-window cross-attention block.

Attribute names follow the official IGGT checkpoint (`atten_block.conv_block.cab...`).
"""

import functools

import torch
import torch.nn.functional as F
from torch import nn

from iggt.errors import ConfigError
from iggt.model.layers.attention_kernels import batched_sdpa
from iggt.model.layers.fused_token_norm import add_and_normalize, normalize
from iggt.model.layers.gelu_epilogue import epilogue_dtype, linear_gelu
from iggt.model.layers.hat_windows import (
    merge_windows,
    overlapping_window_key_mask,
    pad_to_window_multiple,
    partition_windows,
    unfold_overlapping_windows,
    window_key_mask,
)
from iggt.model.layers.row_slices import map_row_slices


class DropPath(nn.Module):
    """Stochastic depth: during training, zero a residual branch per sample with `probability`."""

    def __init__(self, probability: float) -> None:
        super().__init__()
        self.probability = probability

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.probability == 0.0:
            return x
        keep = 1.0 - self.probability
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class FeedForward(nn.Module):
    """Two-layer GELU MLP on the last dimension, over at most ``max_hidden_elements`` hidden values at once.

    The instance head runs it on every pixel of an 8x grid (12 frames at 336 x 504: 663 k tokens, a
    512-wide hidden layer of 1.4 GB twice over, before and after the GELU): the largest transient of
    the whole forward pass. Each token's output depends on that token alone, so where no gradient
    is recorded the rows go through in slices whose hidden layer holds at most ``max_hidden_elements``
    values (in training every slice's hidden layer would be kept for the backward pass anyway).
    """

    max_hidden_elements = 2**26
    """Hidden values of one slice (0.27 GB in float32)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self._mlp(x)
        step = max(1, self.max_hidden_elements // self.fc1.out_features)
        out = map_row_slices(self._mlp, step, x.reshape(-1, x.shape[-1]))
        return out.view(*x.shape[:-1], out.shape[-1])

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        dtype = epilogue_dtype(x, self.fc1)  # float16 / bfloat16 heads: GELU in fc1's epilogue
        hidden = F.gelu(self.fc1(x)) if dtype is None else linear_gelu(x, self.fc1, dtype)
        return self.fc2(hidden)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: (B, C, H, W) scaled per channel by a gate computed from the mean."""

    def __init__(self, channels: int, squeezed_channels: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, squeezed_channels, 1),
            nn.ReLU(),
            nn.Conv2d(squeezed_channels, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class ChannelAttentionBlock(nn.Module):
    """Conv 3x3 -> GELU -> conv 3x3 -> channel attention; (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, hidden_channels: int, squeezed_channels: int) -> None:
        super().__init__()
        self.cab = nn.Sequential(
            nn.Conv2d(channels, hidden_channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden_channels, channels, 3, padding=1),
            ChannelAttention(channels, squeezed_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)


class WindowMultiHeadAttention(nn.Module):
    """Multi-head self-attention inside each window (no position bias, as in the reference)."""

    max_qkv_elements = 2**26
    """Query, key and value values computed at once (0.27 GB in float32): where no gradient is
    recorded, windows go through in slices, each attending within itself, so that the projections
    of a whole 8x grid never coexist."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, windows: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N, L, C) windows, optional (N, 1, 1, L) bool key mask (True = attend) -> (N, L, C)."""
        count, length, channels = windows.shape
        step = count if torch.is_grad_enabled() else max(1, self.max_qkv_elements // (3 * length * channels))
        if key_mask is None or key_mask.shape[0] != count:  # none, or one mask shared by every window
            return map_row_slices(functools.partial(self._attend, key_mask=key_mask), step, windows)
        return map_row_slices(self._attend, step, windows, key_mask)

    def _attend(self, windows: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        count, length, channels = windows.shape
        qkv = self.qkv(windows).view(count, length, 3, self.num_heads, channels // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        attended = batched_sdpa(query, key, value, attn_mask=key_mask)
        return self.proj(attended.transpose(1, 2).reshape(count, length, channels))


class HybridAttentionBlock(nn.Module):
    """Window self-attention plus a scaled channel-attention branch, then an MLP (HAT's HAB, no shift).

    (B, H*W, C) tokens of an H x W grid -> same shape; any H, W (windows are padded and masked).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        conv_hidden_channels: int,
        squeezed_channels: int,
        conv_scale: float = 0.01,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.conv_scale = conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowMultiHeadAttention(dim, num_heads)
        self.conv_block = ChannelAttentionBlock(dim, conv_hidden_channels, squeezed_channels)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        residual, branch = self.residual_and_branch(tokens, height, width)
        return residual + branch

    def residual_and_branch(self, tokens: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The output's two terms, (B, H*W, C) each: the refiner adds them inside its LayerNorm's pass."""
        batch, _, channels = tokens.shape
        normed = normalize(tokens, self.norm1, for_products=True).view(batch, height, width, channels)
        # Attention before the conv branch (they are independent): its peak then does not hold the
        # branch's grid. Each of these is a full grid of features, freed as soon as it is used.
        attended = self.drop_path(self._window_attention(normed).reshape(tokens.shape))
        conv = self.conv_block(normed.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(tokens.shape)
        del normed
        tokens, normed = add_and_normalize(tokens, attended, self.norm2, conv, self.conv_scale, for_products=True)
        del attended, conv
        return tokens, self.drop_path(self.mlp(normed))

    def _window_attention(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        batch, height, width, _ = grid.shape
        padded = pad_to_window_multiple(grid, self.window_size)
        windows = partition_windows(padded, self.window_size)
        key_mask = window_key_mask(height, width, self.window_size, grid.device)
        if key_mask is not None:
            key_mask = key_mask.repeat(batch, 1, 1, 1)
        attended = self.attn(windows, key_mask)
        merged = merge_windows(attended, self.window_size, batch, padded.shape[1], padded.shape[2])
        return merged[:, :height, :width]


class OverlappingCrossAttentionBlock(nn.Module):
    """Cross-attention from window_size windows of queries to enlarged overlapping windows of a
    context grid (HAT's OCAB with separate query and context), then an MLP.

    Queries and context share `norm1`. The relative position bias table has
    (window_size + overlap_size - 1)**2 rows, indexed by the owner's relative_position_index_OCA.
    With `reference_query_layout` the query windows are cut as the official code cuts them (from
    the channels-first map read as channels-last); keys and values are always spatial windows.
    Grids that are not multiples of the window are zero-padded after the projections (so padded
    keys and values are zero, like the reference's own border) and padded keys beyond that border
    are masked.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        overlap_ratio: float = 0.5,
        mlp_ratio: float = 4.0,
        reference_query_layout: bool = True,
    ) -> None:
        super().__init__()
        if reference_query_layout and dim % window_size:
            raise ConfigError(
                f"overlapping cross-attention width {dim} with reference_query_layout needs a multiple of "
                f"window_size {window_size}; change the width or set reference_query_layout=False"
            )
        self.reference_query_layout = reference_query_layout
        self.num_heads = num_heads
        self.window_size = window_size
        self.overlap_size = int(window_size * overlap_ratio) + window_size
        table_rows = (window_size + self.overlap_size - 1) ** 2
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_rows, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(
        self,
        tokens: torch.Tensor,
        context: torch.Tensor,
        height: int,
        width: int,
        relative_position_index: torch.Tensor,
    ) -> torch.Tensor:
        """(B, H*W, C) query tokens and context tokens of the same H x W grid -> (B, H*W, C)."""
        residual, branch = self.residual_and_branch(tokens, context, height, width, relative_position_index)
        return residual + branch

    def residual_and_branch(
        self,
        tokens: torch.Tensor,
        context: torch.Tensor,
        height: int,
        width: int,
        relative_position_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The output's two terms, (B, H*W, C) each: the refiner adds them inside its LayerNorm's pass."""
        batch, _, channels = tokens.shape
        normed_context = normalize(context, self.norm1, for_products=True)
        query = self.q(normalize(tokens, self.norm1, for_products=True)).view(batch, height, width, channels)
        key = self.k(normed_context).view(batch, height, width, channels)
        value = self.v(normed_context).view(batch, height, width, channels)
        attended = self._attend(query, key, value, relative_position_index).reshape(tokens.shape)
        tokens, normed = add_and_normalize(self.proj(attended), tokens, self.norm2, for_products=True)
        return tokens, self.mlp(normed)

    def _attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        relative_position_index: torch.Tensor,
    ) -> torch.Tensor:
        """(B, H, W, C) each -> (B, H, W, C)."""
        batch, height, width, channels = query.shape
        padded_query = pad_to_window_multiple(query, self.window_size)
        query_windows = self._split_heads(self._query_windows(padded_query))
        key_windows = self._split_heads(unfold_overlapping_windows(key, self.window_size, self.overlap_size))
        value_windows = self._split_heads(unfold_overlapping_windows(value, self.window_size, self.overlap_size))
        bias = self._position_bias(relative_position_index).unsqueeze(0)
        key_mask = overlapping_window_key_mask(height, width, self.window_size, self.overlap_size, query.device)
        frames_per_call = batch
        if key_mask is not None:
            # Padded keys masked per window: one frame's windows per call, all calls sharing one
            # (windows, heads, L, L') bias, rather than that bias copied for every frame.
            mask_bias = torch.zeros(key_mask.shape, dtype=bias.dtype, device=bias.device)
            bias = bias + mask_bias.masked_fill(~key_mask, float("-inf"))
            frames_per_call = 1
        attend = functools.partial(batched_sdpa, attn_mask=bias.to(query_windows.dtype))
        step = frames_per_call * (query_windows.shape[0] // batch)
        attended = map_row_slices(attend, step, query_windows, key_windows, value_windows)
        attended = attended.transpose(1, 2).reshape(-1, self.window_size * self.window_size, channels)
        merged = merge_windows(attended, self.window_size, batch, padded_query.shape[1], padded_query.shape[2])
        return merged[:, :height, :width]

    def _query_windows(self, padded_query: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C), H and W multiples of the window -> (B * windows, window_size**2, C)."""
        if not self.reference_query_layout:
            return partition_windows(padded_query, self.window_size)
        # The official OCAB partitions its channels-first query as if it were channels-last, so each
        # "window" mixes channels, rows and columns; the official checkpoint was trained that way.
        channels = padded_query.shape[-1]
        scrambled = partition_windows(padded_query.permute(0, 3, 1, 2), self.window_size)
        return scrambled.reshape(-1, self.window_size * self.window_size, channels)

    def _split_heads(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, L, C) -> (N, heads, L, C / heads)."""
        count, length, channels = windows.shape
        return windows.view(count, length, self.num_heads, channels // self.num_heads).transpose(1, 2)

    def _position_bias(self, relative_position_index: torch.Tensor) -> torch.Tensor:
        """(heads, window_size**2, overlap_size**2) additive attention bias."""
        bias = self.relative_position_bias_table[relative_position_index.reshape(-1)]
        bias = bias.view(self.window_size**2, self.overlap_size**2, self.num_heads)
        # Contiguous: SDPA's fused kernels need a mask whose last dimension has stride 1, else math runs.
        return bias.permute(2, 0, 1).contiguous()
