"""DINOv2-style ViT (with register tokens) that turns images into patch tokens.

Token order inside the ViT: class token, register tokens, then patches in row-major order.
Attribute names follow DINOv2 so its checkpoints (and the aggregator's copy) load as they are.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from iggt.model.layers.block import Block
from iggt.model.layers.patch_embed import PatchEmbed


class DinoV2Encoder(nn.Module):
    """ViT over (B, 3, H, W) normalised images; ``forward`` returns (B, H/p * W/p, dim) patch tokens."""

    def __init__(
        self,
        img_size: int,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        init_values: float = 1.0,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens
        self.use_checkpoint = False
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        # Masked-image pre-training token of DINOv2: kept for checkpoint compatibility, never trained.
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, init_values=init_values, norm_eps=1e-6) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, images: Tensor) -> Tensor:
        return self.norm(self.forward_prenorm(images))[:, 1 + self.num_register_tokens :]

    def forward_prenorm(self, images: Tensor) -> Tensor:
        """(B, 1 + registers + patches, dim) tokens after the last block, before the final norm."""
        x = self.prepare_tokens(images)
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) if self.use_checkpoint and self.training else block(x)
        return x

    def prepare_tokens(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 1 + registers + patches, dim) with position embeddings added."""
        height, width = images.shape[-2:]
        patches = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        x = x + self.position_embedding(height // self.patch_size, width // self.patch_size).to(x.dtype)
        registers = self.register_tokens.expand(x.shape[0], -1, -1)
        return torch.cat([x[:, :1], registers, x[:, 1:]], dim=1)

    def position_embedding(self, grid_h: int, grid_w: int) -> Tensor:
        """(1, 1 + grid_h * grid_w, dim): the square table resized (bicubic, antialiased) to the grid."""
        table_side = math.isqrt(self.pos_embed.shape[1] - 1)
        if grid_h == grid_w == table_side:
            return self.pos_embed
        table = self.pos_embed.float()
        dim = table.shape[-1]
        patch_table = table[:, 1:].reshape(1, table_side, table_side, dim).permute(0, 3, 1, 2)
        patch_table = F.interpolate(patch_table, size=(grid_h, grid_w), mode="bicubic", antialias=True)
        patch_table = patch_table.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
        return torch.cat([table[:, :1], patch_table], dim=1)
