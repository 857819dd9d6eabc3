"""Global attention over a subset of keys and values (AVGGT-style): every query, fewer keys.

The global attention of the trunk mostly aligns corresponding regions across views, and
neighbouring patches carry nearly the same evidence, so a strided grid of each frame's patches
serves as its keys and values; the camera and register tokens are always kept. Queries stay all
tokens: the output has the input's shape and every token is updated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from iggt.model.layers.attention import Attention
from iggt.model.layers.attention_kernels import attend


def grid_indices(grid_h: int, grid_w: int, stride: int, device: torch.device) -> Tensor:
    """Row-major indices of the patches on every ``stride``-th row and column of a (grid_h, grid_w)
    patch grid, starting ``stride // 2`` in so the kept patches sit near the centres of their cells."""
    rows = torch.arange(stride // 2, grid_h, stride, device=device)
    cols = torch.arange(stride // 2, grid_w, stride, device=device)
    return (rows[:, None] * grid_w + cols[None, :]).reshape(-1)


def kept_key_indices(
    frames: int,
    tokens_per_frame: int,
    patch_start: int,
    grid: tuple[int, int],
    stride: int,
    keep_first_frame: bool,
    device: torch.device,
) -> Tensor:
    """(K,) indices into the (S * P) tokens of a scene of the tokens kept as keys and values:
    each frame's special tokens and its strided patch grid, all of frame 0's with ``keep_first_frame``."""
    local = torch.cat([torch.arange(patch_start, device=device), patch_start + grid_indices(*grid, stride, device)])
    offsets = torch.arange(frames, device=device)[:, None] * tokens_per_frame
    per_frame = [offsets[frame] + local for frame in range(frames)]
    if keep_first_frame:
        per_frame[0] = torch.arange(tokens_per_frame, device=device)
    return torch.cat(per_frame)


@dataclass(frozen=True, eq=False)
class SubsampledKeyValues:
    """Token mixer for :class:`iggt.model.layers.block.Block`: ``attn`` over (B, S * P, dim) tokens,
    each query attending to the keys and values at ``kept`` (and the per-frame means with ``mean_fill``)."""

    kept: Tensor
    frames: int
    tokens_per_frame: int
    patch_start: int
    mean_fill: bool

    def __call__(self, attn: Attention, x: Tensor, positions: Tensor | None) -> Tensor:
        query, key, value = attn.project(x, positions)
        kept_key, kept_value = key[:, self.kept], value[:, self.kept]
        if self.mean_fill:
            kept_key = torch.cat([kept_key, self._patch_means(key)], dim=1)
            kept_value = torch.cat([kept_value, self._patch_means(value)], dim=1)
        return attn.output(attend(query, kept_key, kept_value))

    def _patch_means(self, tokens: Tensor) -> Tensor:
        """(B, S * P, heads, D) -> (B, S, heads, D): each frame's mean over its patch tokens."""
        batch, _, heads, dim = tokens.shape
        frames = tokens.reshape(batch, self.frames, self.tokens_per_frame, heads, dim)
        return frames[:, :, self.patch_start :].mean(dim=2)
