"""Instance colours shared by the GLB scenes and the mask overlays."""

from __future__ import annotations

import numpy as np

GOLDEN_RATIO_CONJUGATE = 0.618033988749895
"""Hue step between consecutive IDs: successive hues never repeat and stay far apart."""

NO_INSTANCE_COLOUR = np.array([128, 128, 128], dtype=np.uint8)


TABLE_IDS = 1 << 16
"""IDs below this (all of a 16-bit mask) are coloured through a table of every ID up to the largest,
5 times faster than finding the distinct IDs (a sort) on a view of 174,000 pixels."""


def instance_colours(ids: np.ndarray) -> np.ndarray:
    """(...,) int instance IDs -> (..., 3) uint8 distinct colours; ID 0 is grey, same ID same colour."""
    # Coloured once per ID (a scene has tens of them, and hundreds of thousands of points).
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and ids.min() >= 0 and ids.max() < TABLE_IDS:
        return _colours_of(np.arange(ids.max() + 1))[ids]
    distinct, inverse = np.unique(ids, return_inverse=True)
    return _colours_of(distinct)[inverse.reshape(ids.shape)]


def _colours_of(ids: np.ndarray) -> np.ndarray:
    hue = (ids * GOLDEN_RATIO_CONJUGATE) % 1.0
    saturation = 0.55 + 0.45 * ((ids * 0.37) % 1.0)  # vary saturation too, so hue neighbours differ
    value = 0.75 + 0.25 * ((ids * 0.73) % 1.0)
    rgb = np.round(_hsv_to_rgb(hue, saturation, value) * 255).astype(np.uint8)
    rgb[ids == 0] = NO_INSTANCE_COLOUR
    return rgb


def _hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Elementwise HSV in [0, 1] -> (..., 3) RGB in [0, 1]."""
    sector = np.floor(hue * 6).astype(np.int64) % 6
    fraction = hue * 6 - np.floor(hue * 6)
    p, q, t = (
        value * (1 - saturation),
        value * (1 - saturation * fraction),
        value * (1 - saturation * (1 - fraction)),
    )
    choices = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q)]
    channels = [np.choose(sector, [c[k] for c in choices]) for k in range(3)]
    return np.stack(channels, -1)
