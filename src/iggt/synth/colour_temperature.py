"""Colour of a blackbody at a temperature in Kelvin, as a linear-sRGB gain relative to 6500 K.

Planck's law is integrated against an analytic fit of the CIE 1931 colour-matching functions
(piecewise Gaussians, Wyman, Sloan and Shirley 2013), the XYZ result is taken to linear sRGB
and divided by the 6500 K colour, so 6500 K is exactly white (1, 1, 1). Every colour is then
scaled to a green channel of 1, which keeps a light's brightness roughly independent of its
temperature: a 3000 K lamp comes out about (1.95, 1, 0.30), a 10000 K sky about (0.83, 1, 1.37).
"""

from __future__ import annotations

import numpy as np

WHITE_KELVIN = 6500.0

_WAVELENGTHS_NM = np.arange(380.0, 781.0, 5.0)
# (weight, mean, sigma below the mean, sigma above it) of each lobe of x-bar, y-bar, z-bar.
_LOBES = (
    ((1.056, 599.8, 37.9, 31.0), (0.362, 442.0, 16.0, 26.7), (-0.065, 501.1, 20.4, 26.2)),
    ((0.821, 568.8, 46.9, 40.5), (0.286, 530.9, 16.3, 31.1)),
    ((1.217, 437.0, 11.8, 36.0), (0.681, 459.0, 26.0, 13.8)),
)
_XYZ_TO_LINEAR_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
_PLANCK_C2 = 1.438777e-2  # second radiation constant h c / k in metre-Kelvin


def _matching_functions() -> np.ndarray:
    """(3, L) CIE x-bar, y-bar, z-bar at ``_WAVELENGTHS_NM``."""
    rows = []
    for lobes in _LOBES:
        row = np.zeros_like(_WAVELENGTHS_NM)
        for weight, mean, below, above in lobes:
            sigma = np.where(mean > _WAVELENGTHS_NM, below, above)
            row += weight * np.exp(-0.5 * ((_WAVELENGTHS_NM - mean) / sigma) ** 2)
        rows.append(row)
    return np.stack(rows)


_CMF = _matching_functions()


def _blackbody_rgb(kelvin: np.ndarray) -> np.ndarray:
    """(..., 3) linear sRGB of blackbodies at ``kelvin`` (...,), up to a common scale."""
    metres = _WAVELENGTHS_NM * 1e-9
    # Planck's law without its constant factor; the colour is normalised afterwards anyway.
    radiance = 1.0 / (metres**5 * np.expm1(_PLANCK_C2 / (metres * np.asarray(kelvin, float)[..., None])))
    xyz = radiance @ _CMF.T
    return np.clip(xyz @ _XYZ_TO_LINEAR_SRGB.T, 0.0, None)


_WHITE_RGB = _blackbody_rgb(np.array(WHITE_KELVIN))


def kelvin_to_rgb(kelvin: float | np.ndarray) -> np.ndarray:
    """(..., 3) float64 linear-RGB gain of light at ``kelvin`` (...,): 6500 K is exactly (1, 1, 1), green is 1."""
    relative = _blackbody_rgb(np.asarray(kelvin, float)) / _WHITE_RGB
    return relative / relative[..., 1:2]
