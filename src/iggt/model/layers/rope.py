"""2D rotary position embedding (RoPE) over a grid of patch positions.

The head dimension is split in two halves: the first half rotates with the row (y) position,
the second with the column (x) position; within each half, channel i pairs with i + half/2.
"""

import torch
from torch import Tensor, nn


def grid_positions(batch: int, height: int, width: int, num_special: int, device: torch.device) -> Tensor:
    """(batch, num_special + height * width, 2) integer (y, x) positions for a token sequence.

    Special tokens (camera, registers) come first and sit at position (0, 0), where the rotation
    is the identity; patch (row r, column c) sits at (r + 1, c + 1).
    """
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    patches = torch.stack([rows, cols], dim=-1) + 1
    special = torch.zeros(num_special, 2, dtype=patches.dtype, device=device)
    return torch.cat([special, patches]).expand(batch, -1, -1)


class RotaryPositionEmbedding2D(nn.Module):
    """Rotate (B, N, heads, head_dim) queries or keys by their (B, N, 2) grid positions."""

    def __init__(self, frequency: float = 100.0) -> None:
        super().__init__()
        self.frequency = frequency

    def forward(self, tokens: Tensor, positions: Tensor) -> Tensor:
        half = tokens.shape[-1] // 2
        vertical, horizontal = tokens.split(half, dim=-1)
        vertical = self._rotate(vertical, positions[..., 0])
        horizontal = self._rotate(horizontal, positions[..., 1])
        return torch.cat([vertical, horizontal], dim=-1)

    def inverse_frequency(self, dim: int, device: torch.device) -> Tensor:
        """(dim // 2,) float32 rotation rates of the ``dim`` channels that one grid axis rotates."""
        exponents = torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim
        return 1.0 / (self.frequency**exponents)

    def _rotate(self, features: Tensor, positions: Tensor) -> Tensor:
        """(B, N, heads, D) features rotated by (B, N) positions along one grid axis."""
        dim = features.shape[-1]
        angles = positions.to(torch.float32)[..., None] * self.inverse_frequency(dim, features.device)
        # The official checkpoint was trained with angles rounded to the token dtype before cos/sin.
        angles = torch.cat([angles, angles], dim=-1).to(features.dtype)[:, :, None]
        first, second = features.split(dim // 2, dim=-1)
        rotated = torch.cat([-second, first], dim=-1)
        return features * angles.cos() + rotated * angles.sin()
