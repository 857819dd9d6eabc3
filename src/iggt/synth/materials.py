"""Random materials: a texture, two colours and a pattern scale, by the kind of surface."""

from __future__ import annotations

import bisect
import colorsys
import itertools

import numpy as np

from iggt.synth.primitives import Material, Texture

# Relative frequency of each texture per surface style.
_TEXTURE_WEIGHTS = {
    "object": {
        Texture.PLAIN: 3,
        Texture.CHECKER: 1,
        Texture.STRIPES: 2,
        Texture.GRADIENT: 1,
        Texture.NOISE: 2,
        Texture.MARBLE: 1,
    },
    "floor": {Texture.CHECKER: 3, Texture.STRIPES: 3, Texture.NOISE: 2, Texture.MARBLE: 2},
    "wall": {Texture.PLAIN: 4, Texture.GRADIENT: 2, Texture.STRIPES: 2, Texture.NOISE: 2},
    "ceiling": {Texture.PLAIN: 4, Texture.NOISE: 1},
}
# Per style: the textures and their cumulative probabilities, for one uniform draw per choice.
_TEXTURE_TABLES = {
    style: (list(weights), list(itertools.accumulate(w / sum(weights.values()) for w in weights.values())))
    for style, weights in _TEXTURE_WEIGHTS.items()
}
# Pattern frequency range in cycles per metre.
_SCALE_RANGE = {
    Texture.PLAIN: (1.0, 1.0),
    Texture.CHECKER: (1.5, 5.0),
    Texture.STRIPES: (2.0, 10.0),
    Texture.GRADIENT: (0.5, 2.0),
    Texture.NOISE: (2.0, 8.0),
    Texture.MARBLE: (0.5, 2.0),
    Texture.WOOD: (3.0, 12.0),
    Texture.CELLS: (1.5, 6.0),
    Texture.SPECKLE: (15.0, 40.0),
}
RICH_TEXTURES = (Texture.WOOD, Texture.CELLS, Texture.SPECKLE)
"""Textures only drawn when SceneConfig.rich_texture_probability > 0 (the default scenes never use them)."""


def rich_texture(rng: np.random.Generator) -> tuple[Texture, float]:
    """One of RICH_TEXTURES and its pattern scale in cycles per metre."""
    texture = RICH_TEXTURES[int(rng.integers(len(RICH_TEXTURES)))]
    return texture, float(rng.uniform(*_SCALE_RANGE[texture]))


# Brightness range by style: ceilings are light, floors darker.
_VALUE_RANGE = {"object": (0.15, 0.95), "floor": (0.2, 0.7), "wall": (0.45, 0.95), "ceiling": (0.75, 0.95)}


def random_colour(rng: np.random.Generator, value_range: tuple[float, float]) -> tuple[float, float, float]:
    """A random linear-RGB colour with moderate saturation, brightness in ``value_range``."""
    hue, saturation, value = rng.random(), rng.uniform(0.05, 0.8), rng.uniform(*value_range)
    return colorsys.hsv_to_rgb(hue, saturation, value)


def sample_material(rng: np.random.Generator, style: str = "object") -> Material:
    """A random material for a surface of ``style`` ("object", "floor", "wall" or "ceiling")."""
    textures, cumulative = _TEXTURE_TABLES[style]
    texture = textures[min(bisect.bisect(cumulative, rng.random()), len(textures) - 1)]
    colour_a = random_colour(rng, _VALUE_RANGE[style])
    if rng.random() < 0.5:
        colour_b = random_colour(rng, _VALUE_RANGE[style])
    else:  # a darker or lighter shade of the same colour, like wood grain or a faded print
        factor = rng.uniform(0.4, 1.6)
        colour_b = tuple(float(min(1.0, c * factor)) for c in colour_a)
    return Material(
        texture=texture,
        colour_a=colour_a,
        colour_b=colour_b,
        scale=float(rng.uniform(*_SCALE_RANGE[texture])),
        offset=(rng.uniform(0, 10), rng.uniform(0, 10), rng.uniform(0, 10)),
    )
