"""The pixel mapping of a resize followed by a crop or pad: the one place its half-pixel rule is derived.

Pixel (u, v) is the centre of column u, row v, so an image W pixels wide spans [-0.5, W - 0.5].
Scaling it by ``scale`` keeps the outer edge -0.5 in place, so coordinate ``x`` goes to
``(x + 0.5) * scale - 0.5``; a crop or pad then shifts by ``offset``, the target coordinate of the
scaled image's first pixel (negative when cropped, positive when padded). Per axis::

    target = (original + 0.5) * scale - 0.5 + offset

Every function works elementwise on floats, numpy arrays and torch tensors (``scale`` and
``offset`` may be per-axis arrays broadcast against ``(..., 2)`` coordinates (x, y)).
"""

from __future__ import annotations

import numpy as np
import torch


def resized_coordinate(original, scale, offset):
    """Original pixel coordinate(s) -> coordinate(s) in the resized and cropped (or padded) image."""
    return (original + 0.5) * scale - 0.5 + offset


def original_coordinate(target, scale, offset):
    """Coordinate(s) in the resized and cropped (or padded) image -> original pixel coordinate(s)."""
    return (target - offset + 0.5) / scale - 0.5


def nearest_original_pixel(target, scale, offset):
    """Index of the original pixel whose centre is nearest to ``target`` (a tie goes to the higher
    index), unclamped: it lies outside [0, size) where the target shows padding."""
    rounded = original_coordinate(target, scale, offset) + 0.5
    return rounded.floor().long() if isinstance(rounded, torch.Tensor) else np.floor(rounded).astype(np.int64)


def resize_intrinsics(intrinsic, scale_x, scale_y, offset_x, offset_y):
    """(..., 3, 3) intrinsics of the original image -> those of the resized and cropped one.

    Row operations (not a matrix product) keep an infinite focal length from becoming NaN; the
    result has the input's type and dtype.
    """
    shift_x, shift_y = resized_coordinate(0.0, scale_x, offset_x), resized_coordinate(0.0, scale_y, offset_y)
    mapped = intrinsic.clone() if isinstance(intrinsic, torch.Tensor) else intrinsic.copy()
    mapped[..., 0, :] = scale_x * intrinsic[..., 0, :] + shift_x * intrinsic[..., 2, :]
    mapped[..., 1, :] = scale_y * intrinsic[..., 1, :] + shift_y * intrinsic[..., 2, :]
    return mapped


def original_intrinsics(intrinsic, scale_x, scale_y, offset_x, offset_y):
    """Inverse of :func:`resize_intrinsics`: (..., 3, 3) intrinsics of the resized image -> the original's."""
    shift_x, shift_y = resized_coordinate(0.0, scale_x, offset_x), resized_coordinate(0.0, scale_y, offset_y)
    mapped = intrinsic.clone() if isinstance(intrinsic, torch.Tensor) else intrinsic.copy()
    mapped[..., 0, :] = (intrinsic[..., 0, :] - shift_x * intrinsic[..., 2, :]) / scale_x
    mapped[..., 1, :] = (intrinsic[..., 1, :] - shift_y * intrinsic[..., 2, :]) / scale_y
    return mapped
