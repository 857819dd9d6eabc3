"""Sinusoidal embedding of normalised image coordinates, added to DPT feature maps."""

import torch
from torch import Tensor


def uv_grid(width: int, height: int, aspect_ratio: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(height, width, 2) (u, v) pixel-centre coordinates, spanning the image's diagonal-normalised
    extent: u in +-aspect/diag, v in +-1/diag with diag = sqrt(aspect^2 + 1)."""
    diagonal = (aspect_ratio**2 + 1.0) ** 0.5
    span_x, span_y = aspect_ratio / diagonal, 1.0 / diagonal
    xs = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype, device=device)
    ys = torch.linspace(
        -span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype, device=device
    )
    grid_u, grid_v = torch.meshgrid(xs, ys, indexing="xy")
    return torch.stack([grid_u, grid_v], dim=-1)


def sincos_embedding(positions: Tensor, dim: int, omega_0: float = 100.0) -> Tensor:
    """(M,) positions -> (M, dim) [sin(p * w_k), cos(p * w_k)] with w_k = omega_0^(-k / (dim/2))."""
    omega = torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2.0)
    angles = positions.reshape(-1).to(torch.float64)[:, None] * (1.0 / omega_0**omega)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def uv_embedding(
    channels: int,
    height: int,
    width: int,
    image_width: int,
    image_height: int,
    device: torch.device,
    dtype: torch.dtype,
    ratio: float = 0.1,
) -> Tensor:
    """ratio * the (C, h, w) embedding of an h x w map's uv grid (u half, v half), in ``dtype``."""
    grid = uv_grid(width, height, image_width / image_height, device, dtype).reshape(-1, 2)
    embedding = torch.cat(
        [sincos_embedding(grid[:, 0], channels // 2), sincos_embedding(grid[:, 1], channels // 2)], dim=-1
    )
    return ratio * embedding.reshape(height, width, channels).permute(2, 0, 1).to(dtype)


def add_uv_embedding(x: Tensor, image_width: int, image_height: int, ratio: float = 0.1) -> Tensor:
    """(N, C, h, w) feature map plus :func:`uv_embedding` of its size.

    Where no gradient is recorded the sum is written into ``x`` (the dense heads call this on a
    full-resolution map of 128 channels they own; a second one would be the forward pass's peak).
    """
    channels, height, width = x.shape[1:]
    scaled = uv_embedding(channels, height, width, image_width, image_height, x.device, x.dtype, ratio)
    if torch.is_grad_enabled():
        return x + scaled
    return x.add_(scaled)
