"""What the scene engine's ground truth says about an instance: class, colour, size and shape words.

The engine stores only the class and the recipe (``kind``) of an instance, so the other attributes
are read from its ground truth:

- colour: every pixel of the instance (all views) is named by hue, saturation and value
  (:func:`colour_names`); the most frequent name is the instance's colour when at least
  ``DOMINANT_SHARE`` of the pixels carry it, otherwise it has none (two-coloured textures).
- size: the diagonal of the box between the 5% and 95% quantiles of its 3D points (ground-truth
  depth unprojected): small below 0.45 m, large above 1.3 m, medium between.
- shape: a word per recipe (``SHAPE_OF_KIND``); recipes with no clear shape have none.

Attribute values are indices into the tuples below; -1 = none.
"""

from __future__ import annotations

import numpy as np
import torch

from iggt.geometry import depth_to_world_points
from iggt.synth.catalog import CLASS_NAMES

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "white", "grey", "black")
SIZES = ("small", "medium", "large")
SHAPES = ("round", "rectangular", "boxy", "tall", "flat", "pointed", "cylindrical")
SHAPE_OF_KIND = {
    "round_table": "round", "ball": "round", "small_ball": "round", "globe": "round",
    "table": "rectangular", "crate": "boxy", "small_box": "boxy", "cabinet": "boxy",
    "floor_lamp": "tall", "shelf": "tall", "pillar": "tall",
    "rug": "flat", "picture": "flat", "book": "flat", "floor": "flat", "ceiling": "flat",
    "cone": "pointed", "crystal": "pointed", "cup": "cylindrical", "bin": "cylindrical", "vase": "cylindrical",
}  # fmt: skip
DOMINANT_SHARE = 0.45
SMALL_BELOW, LARGE_ABOVE = 0.45, 1.3
NONE = -1


def colour_names(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB -> (N,) index into COLOURS: dark is black, unsaturated white or grey, else by hue."""
    rgb = pixels.astype(np.float64) / 255.0
    value = rgb.max(1)
    saturation = (value - rgb.min(1)) / np.maximum(value, 1e-6)
    hue = _hue_degrees(rgb, value)
    by_hue = np.select(
        [hue < 15, hue < 40, hue < 70, hue < 165, hue < 255, hue < 295, hue < 335],
        [0, 1, 2, 3, 4, 5, 6],
        0,
    )
    by_hue = np.where((by_hue == 1) & (value < 0.6), COLOURS.index("brown"), by_hue)
    grey = np.where(value > 0.75, COLOURS.index("white"), COLOURS.index("grey"))
    names = np.where(saturation < 0.22, grey, by_hue)
    return np.where(value < 0.18, COLOURS.index("black"), names)


def _hue_degrees(rgb: np.ndarray, value: np.ndarray) -> np.ndarray:
    red, green, blue = rgb.T
    spread = np.maximum(value - rgb.min(1), 1e-6)
    hue = np.where(
        value == red,
        (green - blue) / spread % 6,
        np.where(value == green, (blue - red) / spread + 2, (red - green) / spread + 4),
    )
    return 60.0 * hue


def dominant_colour(pixels: np.ndarray) -> int:
    """The colour index most of the (N, 3) pixels carry, or NONE when under DOMINANT_SHARE of them do."""
    counts = np.bincount(colour_names(pixels), minlength=len(COLOURS))
    best = int(counts.argmax())
    return best if counts[best] >= DOMINANT_SHARE * max(counts.sum(), 1) else NONE


def size_index(points: np.ndarray) -> int:
    """(N, 3) metric points of one instance -> index into SIZES."""
    low, high = np.quantile(points, [0.05, 0.95], axis=0)
    diagonal = float(np.linalg.norm(high - low))
    return 0 if diagonal < SMALL_BELOW else (2 if diagonal > LARGE_ABOVE else 1)


def scene_attributes(scene) -> dict[int, tuple[int, int, int, int]]:
    """{instance ID: (class, colour, size, shape) indices} for every instance visible in an engine Scene."""
    world = depth_to_world_points(
        torch.from_numpy(np.asarray(scene.depth, np.float64)),
        torch.from_numpy(np.asarray(scene.intrinsic, np.float64)),
        torch.from_numpy(np.asarray(scene.extrinsic, np.float64)),
    ).numpy()
    valid = np.asarray(scene.depth) > 0
    attributes = {}
    for instance_id, info in scene.instances.items():
        mask = np.asarray(scene.instance_ids) == instance_id
        if not mask.any() or info.class_name not in CLASS_NAMES:
            continue
        points = world[mask & valid]
        shape = SHAPE_OF_KIND.get(info.kind)
        attributes[instance_id] = (
            CLASS_NAMES.index(info.class_name),
            dominant_colour(scene.images[mask]),
            size_index(points) if len(points) >= 10 else NONE,
            SHAPES.index(shape) if shape else NONE,
        )
    return attributes
