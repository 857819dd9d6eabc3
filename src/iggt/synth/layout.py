"""Procedural room layouts: a room of structural instances filled with objects, drawn from one seed.

World frame: z up, floor at z = 0, the room's interior spans [-X/2, X/2] x [-Y/2, Y/2] x [0, Z].
Instance IDs: 1 = floor, 2..5 = the four walls, 6 = ceiling (when the room has one), then one ID
per object. Structural elements are instances of their own so that every pixel that sees a
surface has an instance, and the contrastive task separates the floor from each wall.
All random numbers come from NumPy generators seeded by the scene seed, so a layout is the same
on every machine; the renderer only moves it to a device. Light colours and lamps, gloss and the
richer textures draw from generators of their own ([seed, 2], [seed, 3], [seed, 4]), so turning
them on changes nothing else of a scene.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from iggt.structures.scene import InstanceInfo
from iggt.synth.catalog import (
    CLASS_IDS,
    FLOOR_RECIPES,
    MESH_RECIPES,
    SMALL_RECIPES,
    ObjectModel,
    Support,
    object_top,
    picture,
    rock,
    rug,
)
from iggt.synth.colour_temperature import kelvin_to_rgb
from iggt.synth.config import SceneConfig
from iggt.synth.materials import random_colour, rich_texture, sample_material
from iggt.synth.primitives import Lighting, PointLight, PrimitiveArrays, PrimitiveKind, PrimitiveListBuilder

WALL_THICKNESS = 0.2
_PLACEMENT_ATTEMPTS = 25
_GAP = 0.05  # free space kept between floor objects


@dataclass
class SceneLayout:
    """Everything about one scene except its cameras.

    Attributes:
        seed: the seed the layout was drawn from.
        room_size: (3,) interior width X, length Y and height Z in metres.
        has_ceiling: whether a ceiling closes the room (otherwise sky shows above the walls).
        primitives: every surface of the scene.
        lighting: the light and ambient term.
        instances: instance ID -> class and recipe of every instance in ``primitives``.
        obstacles: (K, 3) floor discs (x, y, radius) that cameras must stay out of.
        focus_points: (M, 3) object centres worth pointing cameras at.
    """

    seed: int
    room_size: np.ndarray
    has_ceiling: bool
    primitives: PrimitiveArrays
    lighting: Lighting
    instances: dict[int, InstanceInfo]
    obstacles: np.ndarray
    focus_points: np.ndarray


def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation by ``yaw`` radians about the world z axis."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) uniformly random rotation (from a normalised Gaussian quaternion)."""
    quaternion = rng.normal(size=4)
    x, y, z, w = quaternion / np.linalg.norm(quaternion)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


class _LayoutBuilder:
    """Accumulates instances and their primitives while a layout is drawn."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.primitives = PrimitiveListBuilder()
        self.instances: dict[int, InstanceInfo] = {}

    def add_instance(self, class_name: str, kind: str) -> int:
        instance_id = len(self.instances) + 1
        self.instances[instance_id] = InstanceInfo(class_name, kind)
        return instance_id

    def add_object(self, model: ObjectModel, position: np.ndarray, yaw: float) -> int:
        """Place every part of ``model`` at ``position`` turned by ``yaw``; returns its instance ID."""
        instance_id = self.add_instance(model.class_name, model.kind)
        materials = [sample_material(self.rng) for _ in range(2)]
        rotation = yaw_matrix(yaw)
        for part in model.parts:
            if part.kind == PrimitiveKind.SPHERE:
                part_rotation = random_rotation(self.rng)  # turns the sphere's texture
            else:
                part_rotation = rotation if part.rotation is None else rotation @ part.rotation
            self.primitives.add(
                part.kind,
                position + rotation @ np.asarray(part.centre),
                np.asarray(part.size),
                part_rotation,
                instance_id,
                CLASS_IDS[model.class_name],
                materials[part.material],
            )
        return instance_id


def _inward_normals() -> np.ndarray:
    """(4, 2) inward normals of the walls west, east, south, north (instance IDs 2..5)."""
    return np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])


def _add_room(builder: _LayoutBuilder, room: np.ndarray, has_ceiling: bool) -> None:
    """Floor, four walls and optionally a ceiling: slabs just outside the interior."""
    half_x, half_y, height = room[0] / 2, room[1] / 2, room[2]
    thick = WALL_THICKNESS
    identity = np.eye(3)
    floor_material = sample_material(builder.rng, "floor")
    builder.primitives.add(
        PrimitiveKind.BOX,
        np.array([0.0, 0.0, -thick / 2]),
        np.array([half_x + thick, half_y + thick, thick / 2]),
        identity,
        builder.add_instance("floor", "floor"),
        CLASS_IDS["floor"],
        floor_material,
    )
    wall_material = sample_material(builder.rng, "wall")
    for normal in _inward_normals():
        material = sample_material(builder.rng, "wall") if builder.rng.random() < 0.25 else wall_material
        centre = np.array([-normal[0] * (half_x + thick / 2), -normal[1] * (half_y + thick / 2), height / 2])
        half = np.array(
            [thick / 2 if normal[0] else half_x + thick, thick / 2 if normal[1] else half_y + thick, height / 2]
        )
        builder.primitives.add(
            PrimitiveKind.BOX, centre, half, identity, builder.add_instance("wall", "wall"), CLASS_IDS["wall"], material
        )
    if has_ceiling:
        builder.primitives.add(
            PrimitiveKind.BOX,
            np.array([0.0, 0.0, height + thick / 2]),
            np.array([half_x + thick, half_y + thick, thick / 2]),
            identity,
            builder.add_instance("ceiling", "ceiling"),
            CLASS_IDS["ceiling"],
            sample_material(builder.rng, "ceiling"),
        )


def _footprint_radius(model: ObjectModel) -> float:
    return math.hypot(model.half_x, model.half_y)


def _floor_pose(
    rng: np.random.Generator, model: ObjectModel, room: np.ndarray, obstacles: list, at_wall: bool
) -> tuple[np.ndarray, float] | None:
    """A collision-free (position, yaw) on the floor, against a wall or anywhere; None if none found."""
    radius = _footprint_radius(model)
    half_room = room[:2] / 2
    for _ in range(_PLACEMENT_ATTEMPTS):
        if at_wall:
            wall = int(rng.integers(4))
            normal = _inward_normals()[wall]
            along_axis = 1 if normal[0] else 0
            span = half_room[along_axis] - model.half_x - 0.02
            if span <= 0:
                return None
            xy = np.zeros(2)
            xy[along_axis] = rng.uniform(-span, span)
            xy[1 - along_axis] = -normal[1 - along_axis] * (half_room[1 - along_axis] - model.half_y - 0.01)
            yaw = math.atan2(-normal[0], normal[1])  # turns local +y (the front) to face the room
        else:
            limit = half_room - radius - _GAP
            if (limit <= 0).any():
                return None
            xy = rng.uniform(-limit, limit)
            yaw = rng.uniform(0, 2 * math.pi)
        if all(math.hypot(*(xy - o[:2])) >= radius + o[2] + _GAP for o in obstacles):
            return np.array([xy[0], xy[1], 0.0]), yaw
    return None


def _cumulative(table: dict) -> tuple[list[str], list[float]]:
    total = sum(entry[1] for entry in table.values())
    return list(table), list(itertools.accumulate(entry[1] / total for entry in table.values()))


_FLOOR_CHOICES, _SMALL_CHOICES = _cumulative(FLOOR_RECIPES), _cumulative(SMALL_RECIPES)


def _weighted_choice(rng: np.random.Generator, choices: tuple[list[str], list[float]]) -> str:
    """One name of ``choices`` = (names, cumulative probabilities), from one uniform draw."""
    names, cumulative = choices
    return names[min(bisect.bisect(cumulative, rng.random()), len(names) - 1)]


def _place_on_floor(
    builder: _LayoutBuilder, model: ObjectModel, room: np.ndarray, obstacles: list, focus: list, at_wall: bool
) -> tuple[np.ndarray, float] | None:
    """Put ``model`` on a free spot of the floor and record it; returns its (position, yaw) or None."""
    pose = _floor_pose(builder.rng, model, room, obstacles, at_wall)
    if pose is not None:
        position, _ = pose
        builder.add_object(model, *pose)
        obstacles.append((position[0], position[1], _footprint_radius(model)))
        focus.append((position[0], position[1], object_top(model) / 2))
    return pose


def _place_on_support(builder: _LayoutBuilder, model: ObjectModel, support_entry: tuple, taken: list) -> None:
    """Put ``model`` on a free spot of a placed support (position, yaw, Support), if there is one."""
    position, yaw, support = support_entry
    local = _free_spot(builder.rng, model, support, taken)
    if local is not None:
        world = position + yaw_matrix(yaw) @ np.array([local[0], local[1], support.height])
        builder.add_object(model, world, yaw + builder.rng.uniform(0, 2 * math.pi))


def _add_floor_objects(builder: _LayoutBuilder, room: np.ndarray, count: int) -> tuple[list, list, list]:
    """Place up to ``count`` floor objects; returns obstacles, focus points and placed supports."""
    obstacles, focus, supports = [], [], []
    for _ in range(count):
        name = _weighted_choice(builder.rng, _FLOOR_CHOICES)
        recipe, _, wall_probability = FLOOR_RECIPES[name]
        model = recipe(builder.rng, float(room[2]))
        pose = _place_on_floor(builder, model, room, obstacles, focus, builder.rng.random() < wall_probability)
        if pose is not None:
            supports.extend((*pose, support) for support in model.supports)
    return obstacles, focus, supports


def _add_small_objects(builder: _LayoutBuilder, supports: list, count: int) -> dict[int, list]:
    """Put up to ``count`` small objects on the placed supports without overlaps.

    Returns the discs taken on each support (support index -> [(x, y, radius)]).
    """
    rng = builder.rng
    taken: dict[int, list] = {}
    for _ in range(count if supports else 0):
        index = int(rng.integers(len(supports)))
        model = SMALL_RECIPES[_weighted_choice(rng, _SMALL_CHOICES)][0](rng, supports[index][2].clearance)
        _place_on_support(builder, model, supports[index], taken.setdefault(index, []))
    return taken


def _add_mesh_objects(
    builder: _LayoutBuilder, room: np.ndarray, obstacles: list, focus: list, supports: list, taken: dict, count: int
) -> None:
    """Place up to ``count`` low-poly mesh objects: rocks on the floor, crystals on free supports."""
    rng = builder.rng
    for _ in range(count):
        recipe, on_floor = MESH_RECIPES[list(MESH_RECIPES)[int(rng.integers(len(MESH_RECIPES)))]]
        if not supports:  # nothing to stand a crystal on
            recipe, on_floor = rock, True
        if on_floor:
            _place_on_floor(builder, recipe(rng, float(room[2])), room, obstacles, focus, at_wall=False)
        else:
            index = int(rng.integers(len(supports)))
            model = recipe(rng, supports[index][2].clearance)
            _place_on_support(builder, model, supports[index], taken.setdefault(index, []))


def _free_spot(rng: np.random.Generator, model: ObjectModel, support: Support, taken: list) -> np.ndarray | None:
    """A spot on ``support`` (its frame) for ``model`` away from ``taken`` discs; records the spot."""
    radius = _footprint_radius(model)
    limit = np.array([support.half_x, support.half_y]) - radius
    if (limit <= 0).any() or object_top(model) > support.clearance:
        return None
    for _ in range(_PLACEMENT_ATTEMPTS):
        spot = rng.uniform(-limit, limit)
        if all(math.hypot(*(spot - t[:2])) >= radius + t[2] for t in taken):
            taken.append((spot[0], spot[1], radius))
            return spot
    return None


def _add_pictures(builder: _LayoutBuilder, room: np.ndarray, count: int) -> None:
    """Hang up to ``count`` pictures on the walls without overlaps; their frames face the room."""
    rng = builder.rng
    hung: list[tuple[int, float, float]] = []  # (wall, along-wall centre, half width)
    for _ in range(count):
        model = picture(rng, float(room[2]))
        wall = int(rng.integers(4))
        normal = _inward_normals()[wall]
        along_axis = 1 if normal[0] else 0
        span = room[along_axis] / 2 - model.half_x - 0.1
        if span <= 0:
            continue
        along = rng.uniform(-span, span)
        if any(w == wall and abs(a - along) < h + model.half_x + 0.1 for w, a, h in hung):
            continue
        hung.append((wall, along, model.half_x))
        position = np.zeros(3)
        position[along_axis] = along
        position[1 - along_axis] = -normal[1 - along_axis] * room[1 - along_axis] / 2
        position[2] = min(rng.uniform(1.2, 1.8), room[2] - 0.15 - model.half_y) - model.half_y
        builder.add_object(model, position, math.atan2(-normal[0], normal[1]))


def _lighting(rng: np.random.Generator, room: np.ndarray, has_ceiling: bool, obstacles: list) -> Lighting:
    """A ceiling light inside a closed room (never inside a pillar), or the sun above an open one."""
    ambient = float(rng.uniform(0.2, 0.4))
    sky = random_colour(rng, (0.75, 1.0)) if has_ceiling else tuple(rng.uniform((0.45, 0.6, 0.8), (0.65, 0.8, 1.0)))
    if has_ceiling:
        for _ in range(_PLACEMENT_ATTEMPTS):
            xy = rng.uniform(-0.3, 0.3, 2) * room[:2]
            if all(math.hypot(*(xy - o[:2])) > o[2] for o in obstacles):
                break
        position = (float(xy[0]), float(xy[1]), float(room[2] - 0.25))
        return Lighting(position, float(rng.uniform(0.9, 1.4)), float(rng.uniform(0.02, 0.06)), ambient, sky)
    elevation, azimuth = rng.uniform(math.radians(35), math.radians(70)), rng.uniform(0, 2 * math.pi)
    direction = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    position = tuple(500.0 * d for d in direction)
    return Lighting(position, float(rng.uniform(0.8, 1.1)), 0.0, ambient, sky)


def _light_colour(rng: np.random.Generator, config: SceneConfig) -> tuple[float, float, float]:
    low, high = config.light_kelvin_range
    kelvin = low if low == high else rng.uniform(low, high)
    return tuple(float(c) for c in kelvin_to_rgb(kelvin))


def _lamp_position(rng: np.random.Generator, room: np.ndarray, obstacles: list) -> tuple[float, float, float]:
    """A point in the upper half of the room, outside every object footprint (lamps in corners, on shelves)."""
    for _ in range(_PLACEMENT_ATTEMPTS):
        xy = rng.uniform(-0.42, 0.42, 2) * room[:2]
        if all(math.hypot(*(xy - o[:2])) > o[2] for o in obstacles):
            break
    return float(xy[0]), float(xy[1]), float(rng.uniform(0.5, 0.9) * room[2])


def _colour_and_lamps(
    seed: int, lighting: Lighting, room: np.ndarray, obstacles: list, config: SceneConfig
) -> Lighting:
    """``lighting`` with the main light's colour temperature and the extra lamps ``config`` asks for."""
    rng = np.random.default_rng([seed, 2])
    count = int(rng.integers(config.lights_range[0], config.lights_range[1] + 1)) - 1
    lamps = tuple(
        PointLight(
            _lamp_position(rng, room, obstacles),
            float(rng.uniform(*config.extra_light_strength_range)),
            float(rng.uniform(0.1, 0.4)),  # lamps fade faster than the main light: they are small and low
            _light_colour(rng, config),
        )
        for _ in range(count)
    )
    return dataclasses.replace(lighting, colour=_light_colour(rng, config), extra_lights=lamps)


def _glossy(seed: int, primitives: PrimitiveArrays, config: SceneConfig) -> PrimitiveArrays:
    """``primitives`` with Blinn-Phong strength and exponent per instance (all parts of an object alike)."""
    if config.specular_probability == 0:
        return primitives
    rng = np.random.default_rng([seed, 3])
    instances = np.unique(primitives.instance_id)
    glossy = rng.random(len(instances)) < config.specular_probability
    strength = np.where(glossy, rng.uniform(*config.specular_strength_range, len(instances)), 0.0)
    roughness = rng.uniform(*config.roughness_range, len(instances))
    row = np.searchsorted(instances, primitives.instance_id)
    return dataclasses.replace(primitives, specular=strength[row], shininess=2 / roughness[row] ** 2 - 2)


def _rich_textures(seed: int, primitives: PrimitiveArrays, config: SceneConfig) -> PrimitiveArrays:
    """``primitives`` where chosen instances wear a richer texture (colours kept, one texture per instance)."""
    if config.rich_texture_probability == 0:
        return primitives
    rng = np.random.default_rng([seed, 4])
    instances = np.unique(primitives.instance_id)
    chosen = rng.random(len(instances)) < config.rich_texture_probability
    drawn = [rich_texture(rng) for _ in instances]
    row = np.searchsorted(instances, primitives.instance_id)
    texture = np.where(chosen[row], np.array([int(t) for t, _ in drawn])[row], primitives.texture)
    scale = np.where(chosen[row], np.array([s for _, s in drawn])[row], primitives.texture_scale)
    return dataclasses.replace(primitives, texture=texture, texture_scale=scale)


def generate_layout(seed: int, config: SceneConfig) -> SceneLayout:
    """Draw the room, objects, pictures, rug and light of scene ``seed``."""
    rng = np.random.default_rng([seed, 0])
    room = np.array([*rng.uniform(*config.room_size_range, 2), rng.uniform(*config.room_height_range)])
    has_ceiling = bool(rng.random() >= config.open_ceiling_probability)
    builder = _LayoutBuilder(rng)
    _add_room(builder, room, has_ceiling)
    count = int(rng.integers(config.objects_range[0], config.objects_range[1] + 1))
    obstacles, focus, supports = _add_floor_objects(builder, room, count)
    count = int(rng.integers(config.small_objects_range[0], config.small_objects_range[1] + 1))
    taken = _add_small_objects(builder, supports, count)
    _add_pictures(builder, room, int(rng.integers(config.pictures_range[0], config.pictures_range[1] + 1)))
    if rng.random() < config.rug_probability:
        model = rug(rng, float(room[2]))
        limit = np.maximum(room[:2] / 2 - _footprint_radius(model), 0.0)
        builder.add_object(model, np.array([*rng.uniform(-limit, limit), 0.0]), rng.uniform(0, 2 * math.pi))
    if config.mesh_objects_range[1] > 0:  # no random draws when off: every other scene stays as it was
        count = int(rng.integers(config.mesh_objects_range[0], config.mesh_objects_range[1] + 1))
        _add_mesh_objects(builder, room, obstacles, focus, supports, taken, count)
    if not focus:  # an empty room: look at its centre
        focus.append((0.0, 0.0, 0.8))
    return SceneLayout(
        seed=seed,
        room_size=room,
        has_ceiling=has_ceiling,
        primitives=_rich_textures(seed, _glossy(seed, builder.primitives.build(), config), config),
        lighting=_colour_and_lamps(seed, _lighting(rng, room, has_ceiling, obstacles), room, obstacles, config),
        instances=builder.instances,
        obstacles=np.array(obstacles, dtype=np.float64).reshape(-1, 3),
        focus_points=np.array(focus, dtype=np.float64),
    )
