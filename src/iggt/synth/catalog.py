"""Object recipes: furniture and simple shapes built from primitives, one instance per object.

A recipe draws an object's dimensions from a NumPy generator and returns its parts in the
object's own frame: origin at the centre of its footprint on the floor, z up, front towards +y
(so an object against a wall turns its -y side to the wall). Every part of an object shares the
object's instance ID when placed, whatever primitive it is made of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull

from iggt.synth.primitives import PrimitiveKind, triangle_frame

CLASS_NAMES = (
    "floor",
    "wall",
    "ceiling",
    "table",
    "chair",
    "shelf",
    "cabinet",
    "sofa",
    "lamp",
    "plant",
    "pillar",
    "rug",
    "picture",
    "box",
    "ball",
    "bin",
    "cone",
    "vase",
    "cup",
    "book",
    "globe",
    "rock",
    "crystal",
)
"""Semantic classes; class ID = position + 1 (0 = none)."""
CLASS_IDS = {name: index + 1 for index, name in enumerate(CLASS_NAMES)}


@dataclass
class Part:
    """One primitive of an object, in the object's frame; ``material`` indexes the object's materials.

    ``rotation`` (3 x 3, object-from-part) is only needed by parts that are not axis-aligned in the
    object's frame (mesh triangles); None means identity.
    """

    kind: PrimitiveKind
    centre: tuple[float, float, float]
    size: tuple[float, float, float]
    material: int = 0
    rotation: np.ndarray | None = None


@dataclass
class Support:
    """A horizontal surface small objects can stand on: height, half extents, free height above."""

    height: float
    half_x: float
    half_y: float
    clearance: float


@dataclass
class ObjectModel:
    """An object in its own frame; ``half_x``/``half_y`` bound its footprint."""

    kind: str
    class_name: str
    parts: list[Part]
    half_x: float
    half_y: float
    supports: list[Support] = field(default_factory=list)


def part_top(part: Part) -> float:
    """Highest z of ``part`` in its object's frame."""
    if part.kind == PrimitiveKind.TRIANGLE:
        length, apex_x, apex_y = part.size
        corners = np.array([[0.0, 0.0, 0.0], [length, 0.0, 0.0], [apex_x, apex_y, 0.0]]) @ part.rotation.T
        return float(part.centre[2] + corners[:, 2].max())
    return float(part.centre[2] + part.size[2])  # half height of boxes and frustums, radius of spheres


def object_top(model: ObjectModel) -> float:
    """Height of ``model`` above the surface it stands on."""
    return max(part_top(part) for part in model.parts)


def box(centre, half, material: int = 0) -> Part:
    return Part(PrimitiveKind.BOX, tuple(centre), tuple(half), material)


def cylinder(centre, radius: float, half_height: float, material: int = 0) -> Part:
    return Part(PrimitiveKind.FRUSTUM, tuple(centre), (radius, radius, half_height), material)


def frustum(centre, r_bottom: float, r_top: float, half_height: float, material: int = 0) -> Part:
    return Part(PrimitiveKind.FRUSTUM, tuple(centre), (r_bottom, r_top, half_height), material)


def sphere(centre, radius: float, material: int = 0) -> Part:
    return Part(PrimitiveKind.SPHERE, tuple(centre), (radius, radius, radius), material)


def _legs(rng: np.random.Generator, half_x: float, half_y: float, height: float, inset: float) -> list[Part]:
    """Four legs from the floor to ``height`` at the corners of a (half_x, half_y) rectangle."""
    thickness = rng.uniform(0.015, 0.035)
    round_legs = rng.random() < 0.5
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            centre = (sx * (half_x - inset), sy * (half_y - inset), height / 2)
            if round_legs:
                parts.append(cylinder(centre, thickness, height / 2, 1))
            else:
                parts.append(box(centre, (thickness, thickness, height / 2), 1))
    return parts


def table(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half_x, half_y = rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.5)
    height, thickness = rng.uniform(0.68, 0.8), rng.uniform(0.015, 0.03)
    top = box((0, 0, height - thickness), (half_x, half_y, thickness))
    legs = _legs(rng, half_x, half_y, height - 2 * thickness, inset=0.06)
    support = Support(height, half_x - 0.05, half_y - 0.05, clearance=0.4)
    return ObjectModel("table", "table", [top, *legs], half_x, half_y, [support])


def round_table(rng: np.random.Generator, room_height: float) -> ObjectModel:
    radius, height, thickness = rng.uniform(0.35, 0.65), rng.uniform(0.68, 0.78), 0.02
    parts = [
        cylinder((0, 0, height - thickness), radius, thickness),
        cylinder((0, 0, height / 2), rng.uniform(0.03, 0.06), height / 2 - thickness, 1),
        frustum((0, 0, 0.02), 0.45 * radius, 0.35 * radius, 0.02, 1),
    ]
    support = Support(height, 0.65 * radius, 0.65 * radius, clearance=0.4)
    return ObjectModel("round_table", "table", parts, radius, radius, [support])


def chair(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half, seat_height, back_height = rng.uniform(0.19, 0.25), rng.uniform(0.42, 0.48), rng.uniform(0.3, 0.5)
    parts = [
        box((0, 0, seat_height - 0.02), (half, half, 0.02)),
        box((0, -half + 0.02, seat_height + back_height / 2), (half, 0.02, back_height / 2)),
        *_legs(rng, half, half, seat_height - 0.04, inset=0.03),
    ]
    return ObjectModel("chair", "chair", parts, half, half)


def shelf(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half_x, half_y = rng.uniform(0.3, 0.6), rng.uniform(0.14, 0.2)
    height = min(rng.uniform(1.0, 2.0), room_height - 0.4)
    board = 0.01
    inner = half_x - 2 * board  # half width between the side boards
    parts = [box((sx * (half_x - board), 0, height / 2), (board, half_y, height / 2)) for sx in (-1, 1)]
    # The back sits between the sides and the boards in front of the back, so no two parts share a
    # face plane where they overlap (coplanar faces of different parts z-fight: speckled colours).
    parts.append(box((0, -half_y + 0.005, height / 2), (inner, 0.005, height / 2), 1))
    levels = np.linspace(0.06, height - board, int(rng.integers(3, 6)))
    supports = []
    for index, level in enumerate(levels):
        parts.append(box((0, 0.005, level), (inner, half_y - 0.005, board)))
        above = levels[index + 1] - level if index + 1 < len(levels) else 0.35
        supports.append(Support(level + board, half_x - 0.04, half_y - 0.03, clearance=above - 2 * board))
    return ObjectModel("shelf", "shelf", parts, half_x, half_y, supports)


def cabinet(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half_x, half_y, height = rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.35), rng.uniform(0.5, 1.1)
    parts = [
        box((0, 0, height / 2), (half_x, half_y, height / 2)),
        box((0, 0.01, height + 0.015), (half_x + 0.01, half_y + 0.01, 0.015), 1),
        box((0, half_y + 0.006, height / 2 + 0.02), (half_x - 0.03, 0.006, height / 2 - 0.06), 1),
    ]
    support = Support(height + 0.03, half_x - 0.03, half_y - 0.03, clearance=0.4)
    return ObjectModel("cabinet", "cabinet", parts, half_x + 0.01, half_y + 0.02, [support])


def sofa(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half_x, half_y, seat = rng.uniform(0.7, 1.2), rng.uniform(0.38, 0.5), rng.uniform(0.38, 0.45)
    arm = rng.uniform(0.08, 0.14)
    # Base between the arms, arms 1 cm short of the back and front, back 1 cm narrower than the
    # arms: no two parts share a face plane where they overlap (coplanar faces z-fight).
    parts = [
        box((0, 0, seat / 2 - 0.05), (half_x - 2 * arm, half_y, seat / 2 - 0.05)),
        box((0, 0.08, seat - 0.05), (half_x - 2 * arm, half_y - 0.1, 0.05), 1),
        box((0, -half_y + 0.1, seat + 0.22), (half_x - 0.01, 0.1, 0.22)),
        *[box((sx * (half_x - arm), 0, seat / 2 + 0.1), (arm, half_y - 0.01, seat / 2 + 0.1)) for sx in (-1, 1)],
    ]
    return ObjectModel("sofa", "sofa", parts, half_x, half_y)


def floor_lamp(rng: np.random.Generator, room_height: float) -> ObjectModel:
    height = min(rng.uniform(1.3, 1.8), room_height - 0.4)
    shade_half, shade_bottom = rng.uniform(0.1, 0.15), rng.uniform(0.17, 0.26)
    parts = [
        frustum((0, 0, 0.015), 0.16, 0.13, 0.015, 1),
        cylinder((0, 0, (height - 2 * shade_half) / 2 + 0.015), 0.015, (height - 2 * shade_half) / 2, 1),
        frustum((0, 0, height - shade_half), shade_bottom, rng.uniform(0.08, 0.14), shade_half),
    ]
    return ObjectModel("floor_lamp", "lamp", parts, shade_bottom, shade_bottom)


def plant(rng: np.random.Generator, room_height: float) -> ObjectModel:
    pot_bottom, pot_half = rng.uniform(0.1, 0.17), rng.uniform(0.12, 0.22)
    pot_top = pot_bottom * rng.uniform(1.1, 1.4)
    leaves = rng.uniform(0.22, 0.4)
    parts = [
        frustum((0, 0, pot_half), pot_bottom, pot_top, pot_half, 1),
        sphere((0, 0, 2 * pot_half + 0.8 * leaves), leaves),
    ]
    for _ in range(int(rng.integers(0, 3))):
        direction = rng.normal(size=3) * (1, 1, 0.3)
        centre = np.array(parts[1].centre) + 0.6 * leaves * direction / np.linalg.norm(direction)
        parts.append(sphere(centre, leaves * rng.uniform(0.5, 0.8)))
    half = max(pot_top, 1.3 * leaves)
    return ObjectModel("plant", "plant", parts, half, half)


def pillar(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half = rng.uniform(0.12, 0.3)
    centre = (0, 0, room_height / 2)
    part = cylinder(centre, half, room_height / 2) if rng.random() < 0.5 else box(centre, (half, half, room_height / 2))
    return ObjectModel("pillar", "pillar", [part], half, half)


def crate(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half = rng.uniform(0.12, 0.45, 3)
    parts = [box((0, 0, half[2]), half)]
    if rng.random() < 0.3:  # a second crate stacked on the first, one object
        top = half * rng.uniform(0.5, 0.9, 3)
        parts.append(box((0, 0, 2 * half[2] + top[2]), top, 1))
    return ObjectModel("crate", "box", parts, half[0], half[1])


def ball(rng: np.random.Generator, room_height: float) -> ObjectModel:
    radius = rng.uniform(0.12, 0.4)
    return ObjectModel("ball", "ball", [sphere((0, 0, radius), radius)], radius, radius)


def waste_bin(rng: np.random.Generator, room_height: float) -> ObjectModel:
    bottom, half_height = rng.uniform(0.1, 0.2), rng.uniform(0.15, 0.3)
    top = bottom * rng.uniform(1.0, 1.3)
    return ObjectModel("bin", "bin", [frustum((0, 0, half_height), bottom, top, half_height)], top, top)


def cone(rng: np.random.Generator, room_height: float) -> ObjectModel:
    bottom, half_height = rng.uniform(0.12, 0.3), rng.uniform(0.2, 0.5)
    parts = [frustum((0, 0, half_height), bottom, rng.uniform(0.0, 0.03), half_height)]
    return ObjectModel("cone", "cone", parts, bottom, bottom)


def vase(rng: np.random.Generator, clearance: float) -> ObjectModel:
    half_height = min(rng.uniform(0.06, 0.18), clearance / 2)
    bottom = rng.uniform(0.035, 0.08)
    top = bottom * rng.uniform(0.5, 1.3)
    parts = [frustum((0, 0, half_height), bottom, top, half_height)]
    return ObjectModel("vase", "vase", parts, max(bottom, top), max(bottom, top))


def cup(rng: np.random.Generator, clearance: float) -> ObjectModel:
    radius, half_height = rng.uniform(0.03, 0.05), min(rng.uniform(0.035, 0.06), clearance / 2)
    return ObjectModel("cup", "cup", [cylinder((0, 0, half_height), radius, half_height)], radius, radius)


def book(rng: np.random.Generator, clearance: float) -> ObjectModel:
    cover = rng.uniform((0.06, 0.008, 0.09), (0.1, 0.025, 0.14))
    standing = rng.random() < 0.5 and 2 * cover[2] < clearance  # on its edge, else lying flat
    half = cover if standing else np.array([cover[0], cover[2], cover[1]])
    return ObjectModel("book", "book", [box((0, 0, half[2]), half)], half[0], half[1])


def small_box(rng: np.random.Generator, clearance: float) -> ObjectModel:
    half = rng.uniform(0.04, 0.12, 3)
    half[2] = min(half[2], clearance / 2)
    return ObjectModel("small_box", "box", [box((0, 0, half[2]), half)], half[0], half[1])


def small_ball(rng: np.random.Generator, clearance: float) -> ObjectModel:
    radius = min(rng.uniform(0.04, 0.1), clearance / 2)
    return ObjectModel("small_ball", "ball", [sphere((0, 0, radius), radius)], radius, radius)


def globe(rng: np.random.Generator, clearance: float) -> ObjectModel:
    radius = min(rng.uniform(0.07, 0.13), (clearance - 0.05) / 2)
    parts = [
        frustum((0, 0, 0.01), 0.06, 0.05, 0.01, 1),
        cylinder((0, 0, 0.035), 0.008, 0.015, 1),
        sphere((0, 0, 0.05 + radius), radius),
    ]
    return ObjectModel("globe", "globe", parts, max(radius, 0.06), max(radius, 0.06))


def picture(rng: np.random.Generator, room_height: float) -> ObjectModel:
    """A framed picture; its frame is (half_x, half_z) in the wall plane, hung with -y on the wall."""
    half_x, half_z, depth = rng.uniform(0.15, 0.6), rng.uniform(0.12, 0.45), rng.uniform(0.008, 0.02)
    border = min(half_x, half_z) * rng.uniform(0.05, 0.15)
    parts = [
        box((0, depth, half_z), (half_x, depth, half_z), 1),
        box((0, 2 * depth + 0.002, half_z), (half_x - border, 0.002, half_z - border)),
    ]
    return ObjectModel("picture", "picture", parts, half_x, half_z)


def rug(rng: np.random.Generator, room_height: float) -> ObjectModel:
    half_x, half_y = rng.uniform(0.5, 1.4), rng.uniform(0.4, 1.0)
    return ObjectModel("rug", "rug", [box((0, 0, 0.004), (half_x, half_y, 0.004))], half_x, half_y)


def mesh_parts(vertices: np.ndarray, material: int = 0) -> list[Part]:
    """Triangle parts of the convex hull of ``vertices`` (M, 3): a closed low-poly surface."""
    hull = ConvexHull(vertices)
    parts = []
    for face in hull.simplices:
        rotation, size = triangle_frame(*vertices[face])
        parts.append(Part(PrimitiveKind.TRIANGLE, tuple(vertices[face[0]]), tuple(size), material, rotation))
    return parts


def _jittered_sphere_points(rng: np.random.Generator, count: int, jitter: float) -> np.ndarray:
    """``count`` random directions with radii in [1 - jitter, 1 + jitter]: a lumpy unit ball."""
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * rng.uniform(1 - jitter, 1 + jitter, (count, 1))


def rock(rng: np.random.Generator, room_height: float) -> ObjectModel:
    """A low-poly boulder: the convex hull of 10-18 jittered points, about 16-32 triangles."""
    radii = rng.uniform((0.15, 0.15, 0.1), (0.45, 0.45, 0.35))
    points = _jittered_sphere_points(rng, int(rng.integers(10, 19)), 0.25) * radii
    points[:, 2] -= points[:, 2].min()  # resting on the floor
    half = np.abs(points[:, :2]).max(0)
    return ObjectModel("rock", "rock", mesh_parts(points), float(half[0]), float(half[1]))


def crystal(rng: np.random.Generator, clearance: float) -> ObjectModel:
    """A low-poly gem on a support: an n-gon ring between a low and a high apex (2n triangles)."""
    sides, radius = int(rng.integers(4, 8)), rng.uniform(0.03, 0.07)
    height = min(rng.uniform(0.08, 0.2), clearance)
    ring_height = height * rng.uniform(0.2, 0.45)
    angles = np.sort(rng.uniform(0, 2 * np.pi, sides)) if rng.random() < 0.3 else np.arange(sides) * 2 * np.pi / sides
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles), np.full(sides, ring_height)], 1)
    points = np.concatenate([ring, [[0.0, 0.0, 0.0], [0.0, 0.0, height]]])
    points[:-2, 2] += rng.uniform(-0.1, 0.1, sides) * ring_height  # an uneven girdle
    return ObjectModel("crystal", "crystal", mesh_parts(points), radius, radius)


Recipe = Callable[[np.random.Generator, float], ObjectModel]

FLOOR_RECIPES: dict[str, tuple[Recipe, float, float]] = {
    "table": (table, 3.0, 0.2),
    "round_table": (round_table, 1.5, 0.0),
    "chair": (chair, 3.0, 0.2),
    "shelf": (shelf, 2.0, 1.0),
    "cabinet": (cabinet, 2.0, 0.7),
    "sofa": (sofa, 1.5, 0.8),
    "floor_lamp": (floor_lamp, 1.0, 0.3),
    "plant": (plant, 1.5, 0.3),
    "pillar": (pillar, 0.5, 0.0),
    "crate": (crate, 2.0, 0.3),
    "ball": (ball, 1.0, 0.0),
    "bin": (waste_bin, 1.0, 0.3),
    "cone": (cone, 1.0, 0.0),
}
"""Floor-standing recipes: name -> (recipe, relative frequency, probability of standing at a wall)."""

SMALL_RECIPES: dict[str, tuple[Recipe, float]] = {
    "vase": (vase, 2.0),
    "cup": (cup, 2.0),
    "book": (book, 3.0),
    "small_box": (small_box, 2.0),
    "small_ball": (small_ball, 1.0),
    "globe": (globe, 1.0),
}
"""Recipes for objects on supports: name -> (recipe taking the free height above, relative frequency)."""

MESH_RECIPES: dict[str, tuple[Recipe, bool]] = {"rock": (rock, True), "crystal": (crystal, False)}
"""Low-poly triangle-mesh objects (``SceneConfig.mesh_objects_range``): name -> (recipe, stands on the floor)."""
