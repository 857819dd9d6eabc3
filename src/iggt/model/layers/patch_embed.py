"""Non-overlapping patch projection: (B, 3, H, W) -> (B, H/p * W/p, dim)."""

from torch import Tensor, nn


class PatchEmbed(nn.Module):
    """A stride-p convolution flattened to tokens in row-major patch order."""

    def __init__(self, patch_size: int, embed_dim: int, in_channels: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)
