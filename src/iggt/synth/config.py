"""Typed configs of the procedural scene engine: what is in a scene, and how it is rendered."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from iggt.errors import ConfigError

TRAJECTORIES = ("orbit", "look_at", "walk", "sweep", "drift", "pan")
"""Camera trajectory kinds (iggt.synth.cameras). ``drift`` and ``pan`` are the easy ones of a camera
curriculum (small baselines, small rotations; a pure rotation); the defaults never draw them."""

EASY_MAX_ROTATION_DEG = 30.0
"""The largest relative rotation between two views of a ``drift`` or ``pan`` trajectory."""


MAX_IMAGE_SIDE = 2048
"""Largest image side rendered: a 2048 x 2048 view holds about 170 MB of images and ground truth
while it is rendered and written, so the default batch of 4 scenes x 8 views stays near 5 GB."""


MAX_LIGHTS = 4
"""Most point lights per scene: each casts its own shadow rays, so it adds one ray per pixel."""


def _check_range(name: str, bounds: tuple[float, float], low: float = 0.0) -> None:
    finite = len(bounds) == 2 and all(math.isfinite(b) for b in bounds)
    if not finite or not low <= bounds[0] <= bounds[1]:
        raise ConfigError(f"{name} must be (min, max) of finite numbers with {low} <= min <= max, got {bounds}")


def _check_number(name: str, value: float, low: float = 0.0, high: float = math.inf, what: str = "") -> None:
    if not (math.isfinite(value) and low <= value <= high):
        rule = what or f"a finite number >= {low:g}"
        raise ConfigError(f"{name}={value!r} must be {rule}")


def check_image_size(size: tuple[int, int]) -> None:
    """ConfigError for an image size (H, W) above MAX_IMAGE_SIDE on either side, before any allocation."""
    height, width = size
    if max(height, width) > MAX_IMAGE_SIDE:
        raise ConfigError(
            f"image size {height}x{width} is above the largest size {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} "
            "(memory grows with pixels x views x scenes per batch); render smaller images",
            {"image size ": "size"},
        )


@dataclass
class SceneConfig:
    """What a procedural scene holds and how its cameras move. Lengths are in metres."""

    room_size_range: tuple[float, float] = (4.0, 9.0)
    """Range of the room's width and length (each drawn independently)."""
    room_height_range: tuple[float, float] = (2.5, 3.3)
    """Range of the room's height (floor to ceiling)."""
    objects_range: tuple[int, int] = (6, 14)
    """Range of the number of objects standing on the floor (furniture and primitives)."""
    small_objects_range: tuple[int, int] = (2, 8)
    """Range of the number of small objects put on tables, shelves and cabinets."""
    pictures_range: tuple[int, int] = (0, 3)
    """Range of the number of pictures hung on the walls."""
    mesh_objects_range: tuple[int, int] = (0, 0)
    """Range of the number of low-poly triangle-mesh objects (rocks on the floor, crystals on
    supports). Off by default: meshes cost one primitive per triangle (16-32 a rock)."""
    rug_probability: float = 0.5
    """Probability of one rug (a thin instance lying on the floor)."""
    open_ceiling_probability: float = 0.15
    """Probability of a room without ceiling: sky (depth 0, instance 0) above the walls, sunlight."""
    fov_range_deg: tuple[float, float] = (50.0, 90.0)
    """Range of the scene's horizontal field of view in degrees."""
    fov_jitter_deg: float = 4.0
    """Per-view change of the field of view (uniform in +-jitter), like a zooming camera."""
    camera_height_range: tuple[float, float] = (0.9, 1.9)
    """Range of camera heights above the floor."""
    camera_clearance: float = 0.4
    """Smallest distance between a camera and any wall or object footprint."""
    trajectory_weights: dict[str, float] = field(
        default_factory=lambda: {"orbit": 0.35, "look_at": 0.25, "walk": 0.2, "sweep": 0.2}
    )
    """Relative frequency of each camera trajectory kind (see iggt.synth.cameras)."""
    lights_range: tuple[int, int] = (1, 1)
    """Range of the number of point lights: the main light (ceiling light or sun) plus lamps
    inside the room. The default (1, 1) is the main light alone, as before this option existed."""
    light_kelvin_range: tuple[float, float] = (6500.0, 6500.0)
    """Range of each light's colour temperature in Kelvin; 6500 K is white (the default, as before),
    2700 K a warm bulb, 10000 K a blue sky. Drawn only when the range is not a single value."""
    extra_light_strength_range: tuple[float, float] = (0.2, 0.7)
    """Range of the strength of every light after the main one (the main light's is 0.8-1.4)."""
    specular_probability: float = 0.0
    """Probability that an instance is glossy (Blinn-Phong highlights); 0 = every surface matte (the default)."""
    specular_strength_range: tuple[float, float] = (0.1, 0.6)
    """Range of a glossy instance's specular strength (fraction of the light reflected as a highlight)."""
    rich_texture_probability: float = 0.0
    """Probability that an instance's surfaces take one of the richer textures (wood rings, cells,
    speckle: iggt.synth.materials.RICH_TEXTURES) instead of the six basic ones; 0 = never (the default)."""
    roughness_range: tuple[float, float] = (0.05, 0.5)
    """Range of a glossy instance's roughness: Blinn-Phong exponent 2 / roughness^2 - 2 (0.05 -> 798, 0.5 -> 6)."""

    def __post_init__(self) -> None:
        _check_range("room_size_range", self.room_size_range, low=2.5)
        _check_range("room_height_range", self.room_height_range, low=2.3)
        for name in ("objects_range", "small_objects_range", "pictures_range", "mesh_objects_range"):
            _check_range(name, getattr(self, name))
        for name in ("rug_probability", "open_ceiling_probability"):
            _check_number(name, getattr(self, name), high=1.0, what="a probability in [0, 1]")
        _check_number("fov_jitter_deg", self.fov_jitter_deg)
        _check_number("camera_clearance", self.camera_clearance)
        _check_range("fov_range_deg", self.fov_range_deg, low=10.0)
        if self.fov_range_deg[1] + self.fov_jitter_deg >= 170:
            raise ConfigError(f"fov_range_deg {self.fov_range_deg} plus jitter must stay below 170 degrees")
        _check_range("camera_height_range", self.camera_height_range, low=0.1)
        if self.camera_height_range[1] >= self.room_height_range[0] - 0.2:
            raise ConfigError(
                f"camera_height_range {self.camera_height_range} must stay 0.2 m below the lowest ceiling "
                f"{self.room_height_range[0]}"
            )
        _check_range("lights_range", self.lights_range, low=1)
        if self.lights_range[1] > MAX_LIGHTS:
            raise ConfigError(f"lights_range {self.lights_range} must stay at most {MAX_LIGHTS} lights (shadow cost)")
        _check_range("light_kelvin_range", self.light_kelvin_range, low=1000.0)
        _check_range("extra_light_strength_range", self.extra_light_strength_range)
        for name in ("specular_probability", "rich_texture_probability"):
            _check_number(name, getattr(self, name), high=1.0, what="a probability in [0, 1]")
        _check_range("specular_strength_range", self.specular_strength_range)
        _check_range("roughness_range", self.roughness_range, low=0.01)
        if self.roughness_range[1] >= 1:
            raise ConfigError(f"roughness_range {self.roughness_range} must stay below 1")
        unknown = set(self.trajectory_weights) - set(TRAJECTORIES)
        weights = self.trajectory_weights.values()
        usable = all(math.isfinite(w) and w >= 0 for w in weights) and any(w > 0 for w in weights)
        if unknown or not usable:
            raise ConfigError(
                f"trajectory_weights must give some of {TRAJECTORIES} a positive weight, all finite and >= 0, "
                f"got {self.trajectory_weights}"
            )


@dataclass
class RenderConfig:
    """How scenes are rendered; nothing here changes the ground-truth geometry or labels."""

    supersample: int = 1
    """Odd number k: RGB averages k x k rays per pixel; depth and labels use the pixel-centre ray."""
    shadows: bool = True
    """Cast a shadow ray from every visible point to each light (about doubles the cost per light)."""
    rays_per_chunk: int = 1 << 18
    """Rays traced at once over the whole batch; bounds the memory of eager rendering (about 5 KB
    per ray in a room of 75 primitives, so 1.2 GB at the default). Compiled rendering needs about
    1 KB per ray, so GPUs can take a whole batch (1 << 22) at once."""
    compile: bool = False
    """Compile ray tracing (intersection, shading, shadow rays) into fused kernels with torch.compile:
    3-4x faster on an H100 after about 90 s of compilation (benchmarks/synth_throughput.py)."""

    def __post_init__(self) -> None:
        if self.supersample < 1 or self.supersample % 2 == 0:
            raise ConfigError(f"supersample must be an odd number >= 1 (pixel-centre ray), got {self.supersample}")
        if self.rays_per_chunk < 1024:
            raise ConfigError(f"rays_per_chunk must be >= 1024, got {self.rays_per_chunk}")
