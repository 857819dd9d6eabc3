"""The trunk's FLOP floor: the time its matrix products take at the GPU's dense bf16 rate.

Counted as in ../shared/reference/official_baseline.md: per token and block 24 d^2 FLOPs for the
QKV / output projections and the MLP (ratio 4), plus 4 x context x d for attention (QK^T and AV);
the DINOv2 blocks and the frame blocks see one frame's tokens, the global blocks all frames' tokens.
The rate is the H100/H200 SXM dense bf16 figure (about 790 TFLOP/s measured-peak class), so a
floor_ratio of 1.0 is the hardware's limit for this network, not a target any kernel reaches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the official side-by-side harness uses this file without importing iggt
    from iggt.model.config import IGGTConfig

DENSE_BF16_FLOPS = 790e12


def trunk_flops(config: IGGTConfig, frames: int, height: int, width: int) -> float:
    """Matrix FLOPs of the patch embedding's blocks and the aggregator for one scene."""
    dim = config.embed_dim
    tokens = 1 + config.num_register_tokens + (height // config.patch_size) * (width // config.patch_size)

    def blocks(count: int, sequences: int, length: int) -> float:
        return count * sequences * length * (24 * dim**2 + 4 * length * dim)

    return (
        blocks(config.patch_embed_depth, frames, tokens)
        + blocks(config.depth, frames, tokens)
        + blocks(config.depth, 1, frames * tokens)
    )


def floor_seconds(config: IGGTConfig, frames: int, height: int, width: int) -> float:
    """:func:`trunk_flops` at :data:`DENSE_BF16_FLOPS`."""
    return trunk_flops(config, frames, height, width) / DENSE_BF16_FLOPS
