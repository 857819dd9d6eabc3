"""Procedural solid textures: a colour per surface point from the point's local coordinates.

Textures are functions of the hit point in the primitive's local frame, so a surface looks the
same from every view (multi-view consistent). The noise is integer-hash value noise computed with
int64 arithmetic that never overflows, hence bit-identical on CPU and GPU.
"""

from __future__ import annotations

import math

import torch

from iggt.synth.primitives import Texture

_HASH_PRIMES = (73856093, 19349663, 83492791)
_HASH_MASK = 0x7FFFFFFF


def _hash_unit(cells: torch.Tensor) -> torch.Tensor:
    """(..., 3) integer lattice cells -> (...,) pseudo-random values in [0, 1)."""
    wrapped = cells & 0xFFFFF  # 20 bits each, so every product below stays under 2**63
    value = (
        (wrapped[..., 0] * _HASH_PRIMES[0]) ^ (wrapped[..., 1] * _HASH_PRIMES[1]) ^ (wrapped[..., 2] * _HASH_PRIMES[2])
    )
    value = value & _HASH_MASK
    value = ((value ^ (value >> 13)) * 1274126177) & _HASH_MASK
    value = value ^ (value >> 16)
    return value.to(torch.float32) / float(_HASH_MASK + 1)


def value_noise(points: torch.Tensor) -> torch.Tensor:
    """(..., 3) coordinates -> (...,) smooth noise in [0, 1): trilinear blend of hashed lattice values."""
    floor = torch.floor(points)
    fraction = points - floor
    weight = fraction * fraction * (3 - 2 * fraction)  # smoothstep: no creases at cell borders
    cells = floor.to(torch.int64)
    result = torch.zeros_like(points[..., 0])
    for corner in range(8):
        offset = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1], device=points.device)
        corner_weight = torch.where(offset.bool(), weight, 1 - weight).prod(-1)
        result = result + corner_weight * _hash_unit(cells + offset)
    return result


def _fractal_noise(points: torch.Tensor) -> torch.Tensor:
    return (value_noise(points) * 2 + value_noise(points * 2.03 + 17.0)) / 3


def blend_weights(points: torch.Tensor, texture: torch.Tensor) -> torch.Tensor:
    """Weight of colour b per point: points (..., 3) in texture units, texture (...,) -> (...,) in [0, 1]."""
    x, y, z = points.unbind(-1)
    parity = (torch.floor(x) + torch.floor(y) + torch.floor(z)).remainder(2)
    stripes = (torch.sin(2 * math.pi * (x + 0.3 * z)) > 0).to(points.dtype)
    gradient = torch.sigmoid(z)
    noise = _fractal_noise(points)
    marble = 0.5 + 0.5 * torch.sin(2 * math.pi * x + 6 * noise)
    wood = 0.5 + 0.5 * torch.sin(2 * math.pi * (torch.sqrt(x * x + y * y) + 0.8 * noise))
    cell = _hash_unit(torch.floor(points).to(torch.int64))
    speckle = (cell > 0.85).to(points.dtype)
    choices = torch.stack([torch.zeros_like(x), parity, stripes, gradient, noise, marble, wood, cell, speckle], -1)
    assert choices.shape[-1] == len(Texture)
    return choices.gather(-1, texture[..., None])[..., 0]


def surface_colour(
    local_points: torch.Tensor,
    texture: torch.Tensor,
    scale: torch.Tensor,
    offset: torch.Tensor,
    colour_a: torch.Tensor,
    colour_b: torch.Tensor,
) -> torch.Tensor:
    """Linear RGB (..., 3) of surface points (..., 3) given each point's primitive material."""
    weight = blend_weights(local_points * scale[..., None] + offset, texture)[..., None]
    return colour_a * (1 - weight) + colour_b * weight
