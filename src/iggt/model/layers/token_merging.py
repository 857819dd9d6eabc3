"""Token merging around the global attention (FastVGGT-style): fewer tokens attend, all get a result.

Within each frame, a strided grid of patch tokens are destinations; every other patch token finds
its most similar destination (cosine of the normed tokens) and the given fraction of them, the
most similar first, merge into it (the destination becomes their mean). Attention runs over the
kept tokens at their own grid positions, and each merged token takes its destination's result.
Merging stays within a frame, so the cost of matching is that of a frame-wise attention, and the
camera and register tokens (and with ``keep_first_frame`` all of frame 0) never merge.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from iggt.model.layers.attention import Attention
from iggt.model.layers.key_value_subsampling import grid_indices


@dataclass(frozen=True)
class MergePlan:
    """Which of a scene's N = S * P tokens attend, and where each token's result comes from."""

    kept: Tensor
    """(B, M) indices of the tokens that attend, ascending (M <= N)."""
    slot: Tensor
    """(B, N) for every token, the position in the kept sequence whose result it takes."""
    sources: Tensor
    """(B, R) indices of the merged tokens (R = N - M)."""
    counts: Tensor
    """(B, M) how many tokens each kept token stands for (itself included)."""

    def merge(self, tokens: Tensor) -> Tensor:
        """(B, N, C) -> (B, M, C): each kept token averaged with the tokens merged into it."""
        channels = tokens.shape[-1]
        merged = _gather_tokens(tokens, self.kept).clone()
        targets = self.slot.gather(1, self.sources)
        merged.scatter_add_(1, targets[..., None].expand(-1, -1, channels), _gather_tokens(tokens, self.sources))
        return merged / self.counts[..., None].to(merged.dtype)

    def positions(self, positions: Tensor | None) -> Tensor | None:
        """(B, N, 2) grid positions -> (B, M, 2) those of the kept tokens (None stays None)."""
        return None if positions is None else _gather_tokens(positions, self.kept)

    def unmerge(self, tokens: Tensor) -> Tensor:
        """(B, M, C) results of the kept tokens -> (B, N, C): each token takes its slot's result."""
        return _gather_tokens(tokens, self.slot)


def plan_merge(
    tokens: Tensor,
    frames: int,
    patch_start: int,
    grid: tuple[int, int],
    stride: int,
    fraction: float,
    keep_first_frame: bool,
) -> MergePlan:
    """The merge plan of (B, S * P, C) tokens of S frames of P tokens (special tokens first, then
    the (grid_h, grid_w) patches row-major)."""
    batch, count, channels = tokens.shape
    per_frame = count // frames
    first = 1 if keep_first_frame else 0
    device = tokens.device
    destinations = grid_indices(*grid, stride, device)
    is_destination = torch.zeros(grid[0] * grid[1], dtype=torch.bool, device=device)
    is_destination[destinations] = True
    candidates = (~is_destination).nonzero().squeeze(1)
    merged_count = round(fraction * len(candidates))

    patches = tokens.reshape(batch, frames, per_frame, channels)[:, first:, patch_start:]
    order, match = _rank_candidates(patches, candidates, destinations)
    frame_starts = per_frame * torch.arange(first, frames, device=device)[:, None]  # (S', 1)
    patch_offsets = frame_starts + patch_start
    kept_per_frame = torch.cat(
        [
            (torch.arange(patch_start, device=device) + frame_starts).expand(batch, -1, -1),
            (destinations + patch_offsets).expand(batch, -1, -1),
            candidates[order[..., merged_count:]] + patch_offsets,
        ],
        dim=-1,
    )
    kept = kept_per_frame.sort(dim=-1).values.reshape(batch, -1)
    if keep_first_frame:
        kept = torch.cat([torch.arange(per_frame, device=device).expand(batch, -1), kept], dim=1)

    merging = order[..., :merged_count]
    sources = (candidates[merging] + patch_offsets).reshape(batch, -1)
    targets = (destinations[match.gather(-1, merging)] + patch_offsets).reshape(batch, -1)
    slot = torch.full((batch, count), -1, dtype=torch.long, device=device)
    slot.scatter_(1, kept, torch.arange(kept.shape[1], device=device).expand(batch, -1))
    slot.scatter_(1, sources, slot.gather(1, targets))
    counts = torch.ones(kept.shape, device=device)
    counts.scatter_add_(1, slot.gather(1, sources), torch.ones(sources.shape, device=device))
    return MergePlan(kept=kept, slot=slot, sources=sources, counts=counts)


def _rank_candidates(patches: Tensor, candidates: Tensor, destinations: Tensor) -> tuple[Tensor, Tensor]:
    """(B, S', L, C) patch tokens -> (B, S', candidates) candidate order, most similar to a destination
    first, and each candidate's most similar destination (an index into ``destinations``)."""
    source_features = F.normalize(patches[:, :, candidates].float(), dim=-1)
    destination_features = F.normalize(patches[:, :, destinations].float(), dim=-1)
    similarity, match = (source_features @ destination_features.transpose(-1, -2)).max(dim=-1)
    return similarity.argsort(dim=-1, descending=True), match


@dataclass(frozen=True, eq=False)
class MergedTokens:
    """Token mixer for :class:`iggt.model.layers.block.Block`: ``attn`` over the merged tokens of a
    (B, S * P, dim) scene, unmerged back to every token."""

    frames: int
    patch_start: int
    grid: tuple[int, int]
    stride: int
    fraction: float
    keep_first_frame: bool

    def __call__(self, attn: Attention, x: Tensor, positions: Tensor | None) -> Tensor:
        plan = plan_merge(
            x, self.frames, self.patch_start, self.grid, self.stride, self.fraction, self.keep_first_frame
        )
        return plan.unmerge(attn(plan.merge(x), plan.positions(positions)))


def _gather_tokens(tokens: Tensor, indices: Tensor) -> Tensor:
    """(B, N, C) tokens at (B, K) indices -> (B, K, C)."""
    return tokens.gather(1, indices[..., None].expand(-1, -1, tokens.shape[-1]))
