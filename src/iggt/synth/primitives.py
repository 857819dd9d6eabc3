"""The primitive table of one scene: every surface is a box, sphere, capped frustum or triangle with a material.

Each primitive has a local frame (``world = rotation @ local + centre``) and a size vector whose
meaning depends on its kind. A frustum's axis is local z; it covers cylinders (equal radii),
cones (top radius 0) and truncated cones. A triangle lies in its local z = 0 plane; low-poly
meshes are sets of triangles sharing one instance. Arrays are NumPy float64 here; the renderer
moves them to its device as float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class PrimitiveKind(IntEnum):
    """Primitive kinds and the meaning of ``size``.

    BOX: (half_x, half_y, half_z). SPHERE: (r, r, r). FRUSTUM: (r_bottom, r_top, half_height).
    TRIANGLE: (length, apex_x, apex_y): local vertices (0, 0, 0), (length, 0, 0) and
    (apex_x, apex_y, 0) with length, apex_y > 0 (see ``triangle_frame``); seen from both sides.
    """

    BOX = 0
    SPHERE = 1
    FRUSTUM = 2
    TRIANGLE = 3


def triangle_frame(v0: np.ndarray, v1: np.ndarray, v2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-from-local rotation (3, 3) and size (3,) of the triangle (v0, v1, v2); its centre is v0.

    Local x runs along v0 -> v1, local z along the normal (v1 - v0) x (v2 - v0), local y = z x x,
    which puts v2 on the positive-y side.
    """
    edge_1, edge_2 = np.asarray(v1, float) - v0, np.asarray(v2, float) - v0
    length = float(np.linalg.norm(edge_1))
    normal = np.cross(edge_1, edge_2)
    if length < 1e-9 or np.linalg.norm(normal) < 1e-12:
        raise ValueError(f"degenerate triangle {v0}, {v1}, {v2}")
    x_axis = edge_1 / length
    z_axis = normal / np.linalg.norm(normal)
    y_axis = np.cross(z_axis, x_axis)
    rotation = np.stack([x_axis, y_axis, z_axis], axis=1)
    return rotation, np.array([length, edge_2 @ x_axis, edge_2 @ y_axis])


class Texture(IntEnum):
    """Procedural solid textures evaluated at the local hit point (see iggt.synth.textures)."""

    PLAIN = 0
    CHECKER = 1
    STRIPES = 2
    GRADIENT = 3
    NOISE = 4
    MARBLE = 5
    WOOD = 6  # rings about the local z axis, warped by noise
    CELLS = 7  # blocks of random shade, like stone tiles or patchy paint
    SPECKLE = 8  # sparse flecks, like terrazzo or granite


@dataclass(frozen=True)
class Material:
    """A solid texture blending two colours; ``scale`` is in cycles per metre."""

    texture: Texture
    colour_a: tuple[float, float, float]
    colour_b: tuple[float, float, float]
    scale: float
    offset: tuple[float, float, float]


@dataclass
class PrimitiveArrays:
    """N primitives of one scene.

    Attributes:
        kind: (N,) int64 PrimitiveKind.
        rotation: (N, 3, 3) float64 world-from-local rotation.
        centre: (N, 3) float64 local origin in the world.
        size: (N, 3) float64, meaning by kind (see PrimitiveKind).
        instance_id: (N,) int64 instance the primitive belongs to (> 0).
        class_id: (N,) int64 semantic class (> 0).
        texture: (N,) int64 Texture.
        colour_a: (N, 3) float64 linear RGB in [0, 1].
        colour_b: (N, 3) float64 linear RGB in [0, 1].
        texture_scale: (N,) float64 cycles per metre.
        texture_offset: (N, 3) float64 shift of the texture pattern (local metres).
        specular: (N,) float64 Blinn-Phong specular strength (0 = matte, the default).
        shininess: (N,) float64 Blinn-Phong exponent (higher = smaller, sharper highlights).
    """

    kind: np.ndarray
    rotation: np.ndarray
    centre: np.ndarray
    size: np.ndarray
    instance_id: np.ndarray
    class_id: np.ndarray
    texture: np.ndarray
    colour_a: np.ndarray
    colour_b: np.ndarray
    texture_scale: np.ndarray
    texture_offset: np.ndarray
    specular: np.ndarray
    shininess: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)


class PrimitiveListBuilder:
    """Collects primitives one by one (layout generation) and packs them into PrimitiveArrays."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def add(
        self,
        kind: PrimitiveKind,
        centre: np.ndarray,
        size: np.ndarray,
        rotation: np.ndarray,
        instance_id: int,
        class_id: int,
        material: Material,
    ) -> None:
        self._rows.append((int(kind), rotation, centre, size, instance_id, class_id, material))

    def build(self) -> PrimitiveArrays:
        rows = self._rows
        materials = [row[6] for row in rows]
        return PrimitiveArrays(
            kind=np.array([row[0] for row in rows], dtype=np.int64),
            rotation=np.array([row[1] for row in rows], dtype=np.float64).reshape(-1, 3, 3),
            centre=np.array([row[2] for row in rows], dtype=np.float64).reshape(-1, 3),
            size=np.array([row[3] for row in rows], dtype=np.float64).reshape(-1, 3),
            instance_id=np.array([row[4] for row in rows], dtype=np.int64),
            class_id=np.array([row[5] for row in rows], dtype=np.int64),
            texture=np.array([int(m.texture) for m in materials], dtype=np.int64),
            colour_a=np.array([m.colour_a for m in materials], dtype=np.float64).reshape(-1, 3),
            colour_b=np.array([m.colour_b for m in materials], dtype=np.float64).reshape(-1, 3),
            texture_scale=np.array([m.scale for m in materials], dtype=np.float64),
            texture_offset=np.array([m.offset for m in materials], dtype=np.float64).reshape(-1, 3),
            specular=np.zeros(len(rows)),  # glossiness is drawn per instance afterwards (layout)
            shininess=np.ones(len(rows)),
        )


@dataclass(frozen=True)
class PointLight:
    """A light besides the main one: intensity = strength / (1 + falloff * distance^2), times ``colour``."""

    position: tuple[float, float, float]
    strength: float
    falloff: float
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Lighting:
    """A main light, optional further point lights, and an ambient term; a far-away light with no
    falloff acts as the sun.

    Attributes:
        position: (3,) main light position in the world.
        strength: direct light intensity at zero distance.
        falloff: intensity = strength / (1 + falloff * distance^2).
        ambient: light reaching every surface, shadowed or not.
        sky_colour: (3,) linear RGB of rays that hit nothing.
        colour: (3,) linear-RGB gain of the main light (its colour temperature; white by default).
        extra_lights: further point lights (lamps), each casting its own shadows.
    """

    position: tuple[float, float, float]
    strength: float
    falloff: float
    ambient: float
    sky_colour: tuple[float, float, float]
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    extra_lights: tuple[PointLight, ...] = ()

    def point_lights(self) -> list[PointLight]:
        """Every light, the main one first."""
        return [PointLight(self.position, self.strength, self.falloff, self.colour), *self.extra_lights]
