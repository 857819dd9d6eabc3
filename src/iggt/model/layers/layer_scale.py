"""Per-channel learnable scaling of a residual branch (CaiT layer scale)."""

import torch
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Multiply (..., dim) by a learned vector ``gamma`` initialised to ``init_values``."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma
