"""The VGGT trunk: DINOv2 patch tokens, per-frame camera and register tokens, and alternating
frame-wise and global attention over all views (exactly, or approximated by a
:class:`iggt.model.fast_mode.FastMode`).
"""

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from iggt.model.config import IGGTConfig
from iggt.model.fast_mode import FastMode, get_fast_mode
from iggt.model.layers.block import Block, TokenMixer
from iggt.model.layers.dinov2 import DinoV2Encoder
from iggt.model.layers.fp8_attention import FP8GlobalAttention, check_fp8_runs
from iggt.model.layers.key_value_subsampling import SubsampledKeyValues, kept_key_indices
from iggt.model.layers.rope import RotaryPositionEmbedding2D, grid_positions
from iggt.model.layers.token_merging import MergedTokens

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Aggregator(nn.Module):
    """Images (B, S, 3, H, W) in [0, 1] -> ({block index: (B, S, P, 2 * dim)}, patch_start_idx).

    Each returned tensor concatenates the frame-attention and the global-attention outputs of one
    block; per frame its P tokens are the camera token, the register tokens, then the patches in
    row-major order. Only the blocks in ``output_layers`` are kept, to bound memory. A
    ``fast_mode`` given to :meth:`forward` approximates the global attention (same weights, same
    output shapes); None or "exact" computes it exactly.
    """

    def __init__(self, config: IGGTConfig, output_layers: Iterable[int]) -> None:
        super().__init__()
        dim = config.embed_dim
        self.patch_size = config.patch_size
        self.output_layers = tuple(sorted(set(output_layers)))
        self.use_checkpoint = False
        self.patch_embed = DinoV2Encoder(
            img_size=config.img_size,
            patch_size=config.patch_size,
            embed_dim=dim,
            depth=config.patch_embed_depth,
            num_heads=config.patch_embed_num_heads,
            mlp_ratio=config.mlp_ratio,
            num_register_tokens=config.num_register_tokens,
        )
        self.rope = RotaryPositionEmbedding2D(config.rope_freq) if config.rope_freq > 0 else None
        self.frame_blocks = nn.ModuleList(self._block(config) for _ in range(config.depth))
        self.global_blocks = nn.ModuleList(self._block(config) for _ in range(config.depth))
        # Index 0 is the first frame's token, index 1 every other frame's: the first view is the
        # reference frame of the reconstruction.
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, dim) * 1e-6)
        self.register_token = nn.Parameter(torch.randn(1, 2, config.num_register_tokens, dim) * 1e-6)
        self.patch_start_idx = 1 + config.num_register_tokens

    def _block(self, config: IGGTConfig) -> Block:
        return Block(
            config.embed_dim,
            config.num_heads,
            config.mlp_ratio,
            init_values=config.init_values,
            qk_norm=config.qk_norm,
            rope=self.rope,
        )

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Recompute blocks during backward (only while training)."""
        self.use_checkpoint = enabled
        self.patch_embed.use_checkpoint = enabled

    def forward(self, images: Tensor, fast_mode: FastMode | str | None = None) -> tuple[dict[int, Tensor], int]:
        mode = get_fast_mode(fast_mode)
        batch, frames, _, height, width = images.shape
        tokens = self.embed(images)
        tokens_per_frame, dim = tokens.shape[1:]
        grid = (height // self.patch_size, width // self.patch_size)
        positions = None
        if self.rope is not None:
            positions = grid_positions(batch * frames, *grid, self.patch_start_idx, images.device)
        frame_wise_layers = mode.frame_wise_layers(len(self.global_blocks))
        mixer = self._global_mixer(mode, frames, tokens_per_frame, grid, images.device)

        outputs = {}
        for index in range(len(self.frame_blocks)):
            tokens = tokens.reshape(batch * frames, tokens_per_frame, dim)
            tokens = self._run_block(self.frame_blocks[index], tokens, positions)
            frame_output = tokens.reshape(batch, frames, tokens_per_frame, dim)

            if index < frame_wise_layers:
                # AVGGT: in VGGT-1B the early global layers form no cross-view correspondences; run them per frame.
                tokens = self._run_block(self.global_blocks[index], tokens, positions)
            else:
                tokens = tokens.reshape(batch, frames * tokens_per_frame, dim)
                global_positions = None if positions is None else positions.reshape(batch, -1, 2)
                tokens = self._run_block(self.global_blocks[index], tokens, global_positions, mixer)
            if index in self.output_layers:
                global_output = tokens.reshape(batch, frames, tokens_per_frame, dim)
                outputs[index] = torch.cat([frame_output, global_output], dim=-1)
        return outputs, self.patch_start_idx

    def embed(self, images: Tensor) -> Tensor:
        """(B, S, 3, H, W) in [0, 1] -> (B * S, 1 + registers + patches, dim) initial trunk tokens."""
        batch, frames, channels, height, width = images.shape
        mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(3, 1, 1)
        normalized = ((images - mean) / std).reshape(batch * frames, channels, height, width)
        patch_tokens = self.patch_embed(normalized)
        camera = _first_and_others(self.camera_token, batch, frames)
        registers = _first_and_others(self.register_token, batch, frames)
        return torch.cat([camera.to(patch_tokens.dtype), registers.to(patch_tokens.dtype), patch_tokens], dim=1)

    def _global_mixer(
        self, mode: FastMode, frames: int, tokens_per_frame: int, grid: tuple[int, int], device: torch.device
    ) -> TokenMixer | None:
        """The approximation of the global layers that are not frame-wise (None: exact attention)."""
        if mode.subsamples_keys:
            kept = kept_key_indices(
                frames, tokens_per_frame, self.patch_start_idx, grid, mode.kv_stride, mode.keep_first_frame, device
            )
            return SubsampledKeyValues(kept, frames, tokens_per_frame, self.patch_start_idx, mode.kv_mean_fill)
        if mode.merges:
            return MergedTokens(
                frames, self.patch_start_idx, grid, mode.merge_stride, mode.merge_fraction, mode.keep_first_frame
            )
        if mode.fp8_attention:
            check_fp8_runs(device)  # before the trunk's blocks: a CPU run is refused at once
            return FP8GlobalAttention()
        return None

    def _run_block(
        self, block: Block, tokens: Tensor, positions: Tensor | None, mixer: TokenMixer | None = None
    ) -> Tensor:
        if self.use_checkpoint and self.training:
            return checkpoint(block, tokens, positions, mixer, use_reentrant=False)
        return block(tokens, positions, mixer)


def _first_and_others(token: Tensor, batch: int, frames: int) -> Tensor:
    """(1, 2, X, C) -> (B * S, X, C): token[:, 0] for the first frame, token[:, 1] for the rest."""
    first = token[:, :1].expand(batch, 1, *token.shape[2:])
    others = token[:, 1:].expand(batch, frames - 1, *token.shape[2:])
    return torch.cat([first, others], dim=1).reshape(batch * frames, *token.shape[2:])
