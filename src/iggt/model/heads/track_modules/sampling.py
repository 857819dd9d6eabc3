"""Bilinear sampling at pixel coordinates and the sine/cosine embeddings of the tracker.

Coordinates are (x, y) = (column, row) in pixels of the sampled map, pixel centres at integers
(grid_sample with align_corners=True).
"""

import torch
import torch.nn.functional as F


def bilinear_sample(maps: torch.Tensor, coords: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Sample (N, C, H, W) maps at (N, h, w, 2) pixel coordinates -> (N, C, h, w).

    No gradient flows into the coordinates (the tracker detaches them).
    """
    height, width = maps.shape[-2:]
    scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)], device=maps.device, dtype=maps.dtype)
    grid = coords.detach().to(maps.device, maps.dtype) * scale - 1
    return F.grid_sample(maps, grid, align_corners=True, padding_mode=padding_mode)


def sample_point_features(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) maps at (B, N, 2) pixel coordinates -> (B, N, C), border padding."""
    return bilinear_sample(maps, points.unsqueeze(2))[..., 0].transpose(1, 2)


def flow_embedding(flows: torch.Tensor, channels: int) -> torch.Tensor:
    """(..., 2) displacements -> (..., 2 * channels) interleaved sin/cos of x, then of y.

    Frequencies are k * 1000 / channels for k = 0, 2, 4, ... (the reference's choice).
    """
    frequencies = torch.arange(0, channels, 2, device=flows.device, dtype=torch.float32) * (1000.0 / channels)
    embeddings = []
    for axis in range(2):
        phase = flows[..., axis : axis + 1] * frequencies
        embeddings.append(torch.stack([phase.sin(), phase.cos()], -1).flatten(-2))
    return torch.cat(embeddings, -1)


def grid_position_embedding(channels: int, height: int, width: int) -> torch.Tensor:
    """(1, channels, H, W) fixed 2D sine/cosine embedding: the first half encodes the column,
    the second half the row (each as [sin..., cos...] over 10000^(-k / (channels / 4)))."""
    rows, columns = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    embedding = torch.cat([_axis_embedding(channels // 2, columns), _axis_embedding(channels // 2, rows)], -1)
    return embedding.float().permute(2, 0, 1).unsqueeze(0)


def _axis_embedding(channels: int, positions: torch.Tensor) -> torch.Tensor:
    """(H, W) float64 positions -> (H, W, channels) [sin, cos] embedding."""
    frequencies = 1.0 / 10000 ** (torch.arange(channels // 2, dtype=torch.float64) / (channels / 2.0))
    phase = positions[..., None] * frequencies
    return torch.cat([phase.sin(), phase.cos()], -1)
