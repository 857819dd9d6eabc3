"""Ray-cast rendering of B scenes x S views at once: RGB, z-depth, instance and class IDs.

Every pixel's ray is intersected with every primitive of its scene (loops run over primitive kinds
and ray chunks, never over pixels); the nearest hit gives depth and labels exactly. Shading is
Lambert plus an optional Blinn-Phong highlight, from every point light of a scene (each with its
colour, falloff and shadow rays) and an ambient term. The same code runs on any
device; ``SceneBatch.from_layouts`` is the only host-to-device transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from iggt.geometry import inverse_se3
from iggt.synth import intersect
from iggt.synth.config import RenderConfig
from iggt.synth.layout import SceneLayout
from iggt.synth.primitives import PointLight, PrimitiveArrays, PrimitiveKind
from iggt.synth.textures import surface_colour

_MIN_T = 1e-4  # metres (along unit-z camera rays): ignore self-hits of shadow rays
_SHADOW_BIAS = 1e-3  # metres along the normal where shadow rays start
_GAMMA = 1 / 2.2


@dataclass
class SceneBatch:
    """Primitives and lights of B scenes on one device, padded per kind to a common count N.

    Primitives are stored kind by kind (``kind_ranges`` gives each kind's [start, stop) columns);
    padding columns have ``valid`` False and are never hit.

    Attributes:
        rotation: (B, N, 3, 3) world-from-local.  centre: (B, N, 3).  size: (B, N, 3).
        valid: (B, N) bool.  kind: (B, N) int64.  instance_id, class_id, texture: (B, N) int64.
        colour_a, colour_b: (B, N, 3) linear RGB.  texture_scale: (B, N).  texture_offset: (B, N, 3).
        specular, shininess: (B, N) Blinn-Phong strength and exponent.
        light_position: (B, L, 3).  light_strength, light_falloff: (B, L).  light_colour: (B, L, 3):
        the L point lights, padded with lights of strength 0.  ambient: (B,).  sky_colour: (B, 3).
        kind_ranges: (kind, start, stop) for every kind present.
    """

    rotation: torch.Tensor
    centre: torch.Tensor
    size: torch.Tensor
    valid: torch.Tensor
    kind: torch.Tensor
    instance_id: torch.Tensor
    class_id: torch.Tensor
    texture: torch.Tensor
    colour_a: torch.Tensor
    colour_b: torch.Tensor
    texture_scale: torch.Tensor
    texture_offset: torch.Tensor
    specular: torch.Tensor
    shininess: torch.Tensor
    light_position: torch.Tensor
    light_strength: torch.Tensor
    light_falloff: torch.Tensor
    light_colour: torch.Tensor
    ambient: torch.Tensor
    sky_colour: torch.Tensor
    kind_ranges: tuple[tuple[PrimitiveKind, int, int], ...]

    @classmethod
    def from_layouts(cls, layouts: Sequence[SceneLayout], device: torch.device | str) -> SceneBatch:
        """Move layouts to ``device``: float64 becomes float32, integers stay int64."""
        packed, kind_ranges = _pack_primitives([layout.primitives for layout in layouts])
        lights = [layout.lighting for layout in layouts]
        packed.update(_pack_lights([light.point_lights() for light in lights]))
        packed.update(
            ambient=np.array([light.ambient for light in lights]),
            sky_colour=np.array([light.sky_colour for light in lights]),
        )
        tensors = {
            name: torch.as_tensor(values, dtype=torch.float32 if values.dtype == np.float64 else None).to(device)
            for name, values in packed.items()
        }
        return cls(**tensors, kind_ranges=kind_ranges)


def _pack_lights(scenes: Sequence[list[PointLight]]) -> dict[str, np.ndarray]:
    """(B, L, ...) arrays of every scene's point lights; padding lights have strength 0 (they add nothing)."""
    count = max(len(lights) for lights in scenes)
    padding = PointLight((0.0, 0.0, 0.0), 0.0, 0.0)
    padded = [lights + [padding] * (count - len(lights)) for lights in scenes]
    return {
        "light_position": np.array([[light.position for light in lights] for lights in padded], dtype=np.float64),
        "light_strength": np.array([[light.strength for light in lights] for lights in padded], dtype=np.float64),
        "light_falloff": np.array([[light.falloff for light in lights] for lights in padded], dtype=np.float64),
        "light_colour": np.array([[light.colour for light in lights] for lights in padded], dtype=np.float64),
    }


def _pack_primitives(scenes: Sequence[PrimitiveArrays]) -> tuple[dict[str, np.ndarray], tuple]:
    """(B, N, ...) arrays of every PrimitiveArrays field plus ``valid``, grouped kind by kind.

    Each kind gets as many columns as the scene with most primitives of that kind; padding
    columns are invalid and hold an identity frame and unit size so every formula stays finite.
    """
    counts = np.array([np.bincount(scene.kind, minlength=len(PrimitiveKind)) for scene in scenes])
    widths = counts.max(0)
    starts = np.concatenate([[0], np.cumsum(widths)])
    shape = (len(scenes), int(starts[-1]))
    packed = {
        f.name: np.zeros(shape + getattr(scenes[0], f.name).shape[1:], getattr(scenes[0], f.name).dtype)
        for f in fields(PrimitiveArrays)
    }
    packed["size"][:] = 1.0
    packed["rotation"][:] = np.eye(3)
    packed["valid"] = np.zeros(shape, dtype=bool)
    for row, scene in enumerate(scenes):
        order = np.argsort(scene.kind, kind="stable")
        columns = np.concatenate([np.arange(starts[k], starts[k] + counts[row, k]) for k in PrimitiveKind])
        packed["valid"][row, columns] = True
        for f in fields(PrimitiveArrays):
            packed[f.name][row, columns] = getattr(scene, f.name)[order]
    kind_ranges = tuple((k, int(starts[k]), int(starts[k + 1])) for k in PrimitiveKind if widths[k] > 0)
    return packed, kind_ranges


@dataclass
class RenderedViews:
    """Rendered views of B scenes.

    Attributes:
        rgb: (B, S, H, W, 3) float32 display RGB (gamma-encoded) in [0, 1].
        depth: (B, S, H, W) float32 z-depth, 0 where the ray hits nothing.
        instance_ids: (B, S, H, W) int64, 0 where the ray hits nothing.
        class_ids: (B, S, H, W) int64, 0 where the ray hits nothing.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    instance_ids: torch.Tensor
    class_ids: torch.Tensor


_LOCAL_HIT_FUNCTIONS = {
    PrimitiveKind.BOX: intersect.intersect_boxes,
    PrimitiveKind.FRUSTUM: intersect.intersect_frustums,
    PrimitiveKind.TRIANGLE: intersect.intersect_triangles,
}


def _kind_hits(batch: SceneBatch, kind: PrimitiveKind, start: int, stop: int, origins, directions) -> torch.Tensor:
    """t (B, V, P, n) of ray groups against the primitives in columns [start, stop), all of ``kind``."""
    centre, size = batch.centre[:, start:stop], batch.size[:, start:stop]
    if kind == PrimitiveKind.SPHERE:
        t = intersect.intersect_spheres(origins, directions, centre, size[..., 0], _MIN_T)
    else:
        local = intersect.to_local(origins, directions, batch.rotation[:, start:stop], centre)
        t = _LOCAL_HIT_FUNCTIONS[kind](*local, size, _MIN_T)
    return torch.where(batch.valid[:, None, None, start:stop], t, torch.inf)


def nearest_hits(
    batch: SceneBatch, origins: torch.Tensor, directions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest hits of rays with origins (B, V, 1, 3) and directions (B, V, P, 3).

    Returns t (B, V, P) (+inf on a miss) and the hit primitive's column (B, V, P).
    """
    best_t = torch.full(directions.shape[:3], torch.inf, device=directions.device)
    best_index = torch.zeros(directions.shape[:3], dtype=torch.int64, device=directions.device)
    for kind, start, stop in batch.kind_ranges:
        t, index = _kind_hits(batch, kind, start, stop, origins, directions).min(-1)
        closer = t < best_t
        best_t = torch.where(closer, t, best_t)
        best_index = torch.where(closer, index + start, best_index)
    return best_t, best_index


def first_hit_distance(batch: SceneBatch, origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """t (B, V, P) of the first hit of each ray (+inf on a miss): ``nearest_hits`` without the column."""
    best_t = torch.full(directions.shape[:3], torch.inf, device=directions.device)
    for kind, start, stop in batch.kind_ranges:
        best_t = torch.minimum(best_t, _kind_hits(batch, kind, start, stop, origins, directions).amin(-1))
    return best_t


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (B, N, ...) at columns index (B, ...) -> (B, ..., trailing dims of values)."""
    flat = index.reshape(index.shape[0], -1)
    trailing = values.shape[2:]
    expanded = flat.view(*flat.shape, *([1] * len(trailing))).expand(*flat.shape, *trailing)
    return values.gather(1, expanded).view(*index.shape, *trailing)


def _surface_normals(kind, local_points, size) -> torch.Tensor:
    """Outward local normals (..., 3) of each ray's hit primitive."""
    normals = {
        PrimitiveKind.BOX: intersect.box_normals(local_points, size),
        PrimitiveKind.SPHERE: intersect.sphere_normals(local_points),
        PrimitiveKind.FRUSTUM: intersect.frustum_normals(local_points, size),
        PrimitiveKind.TRIANGLE: intersect.triangle_normals(local_points),
    }
    result = normals[PrimitiveKind.BOX]
    for primitive_kind in (PrimitiveKind.SPHERE, PrimitiveKind.FRUSTUM, PrimitiveKind.TRIANGLE):
        result = torch.where((kind == primitive_kind)[..., None], normals[primitive_kind], result)
    return result


def _shade(batch: SceneBatch, origins, directions, t, index, shadows: bool) -> torch.Tensor:
    """Linear RGB (B, V, P, 3) of rays with nearest hit (t, index) (B, V, P); sky where t is infinite."""
    hit = torch.isfinite(t)
    points = origins + torch.where(hit, t, 0.0)[..., None] * directions
    rotation, centre = _gather(batch.rotation, index), _gather(batch.centre, index)
    local = ((points - centre)[..., None, :] @ rotation)[..., 0, :]
    size = _gather(batch.size, index)
    kind = _gather(batch.kind, index)
    local_normal = _surface_normals(kind, local, size)
    # On a flat face (box faces, frustum caps, triangles) the coordinate along the normal is exactly
    # the face's offset; snapping it there keeps a face whose plane lies on a texture-pattern edge
    # from speckling with the rounding noise of the hit point. Triangles lie in their z = 0 plane.
    face_offset = torch.where((kind == PrimitiveKind.TRIANGLE)[..., None], 0.0, local_normal * size)
    local = torch.where(local_normal.abs() == 1, face_offset, local)
    normal = (rotation @ local_normal[..., None])[..., 0]
    normal = torch.where(((normal * directions).sum(-1) > 0)[..., None], -normal, normal)
    albedo = surface_colour(
        local,
        _gather(batch.texture, index),
        _gather(batch.texture_scale, index),
        _gather(batch.texture_offset, index),
        _gather(batch.colour_a, index),
        _gather(batch.colour_b, index),
    )
    direct, highlight = _direct_light(batch, points, normal, directions, index, shadows)
    radiance = albedo * (batch.ambient[:, None, None, None] + direct) + highlight
    unit_up = directions[..., 2:] / directions.norm(dim=-1, keepdim=True)
    sky = batch.sky_colour[:, None, None] * (0.8 + 0.2 * unit_up)
    return torch.where(hit[..., None], radiance, sky)


def _direct_light(batch: SceneBatch, points, normal, directions, index, shadows: bool):
    """Diffuse irradiance and Blinn-Phong highlight (B, V, P, 3) of surface points (B, V, P, 3).

    Every light is computed at once along a trailing light axis (B, V, P, L); no branch depends
    on tensor values, so torch.compile traces it. With specular strength 0 the highlight is exactly 0.
    """
    lights = batch.light_position[:, None, None]  # (B, 1, 1, L, 3)
    to_light = lights - points[..., None, :]
    distance_sq = (to_light * to_light).sum(-1)
    distance = distance_sq.sqrt().clamp_min(1e-9)
    lambert = ((normal[..., None, :] * to_light).sum(-1) / distance).clamp_min(0)
    intensity = batch.light_strength[:, None, None] / (1 + batch.light_falloff[:, None, None] * distance_sq)
    if shadows:
        lambert = lambert * _lit(batch, points + _SHADOW_BIAS * normal)
    colour = batch.light_colour[:, None, None]  # (B, 1, 1, L, 3)
    direct = ((intensity * lambert)[..., None] * colour).sum(-2)
    to_eye = -directions / directions.norm(dim=-1, keepdim=True)
    halfway = to_light / distance[..., None] + to_eye[..., None, :]
    halfway = halfway / halfway.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    cosine = (normal[..., None, :] * halfway).sum(-1).clamp_min(0)
    specular, shininess = _gather(batch.specular, index), _gather(batch.shininess, index)
    lobe = torch.where(lambert > 0, cosine ** shininess[..., None], 0.0)
    highlight = ((intensity * lobe)[..., None] * colour).sum(-2) * specular[..., None]
    return direct, highlight


def _lit(batch: SceneBatch, lifted: torch.Tensor) -> torch.Tensor:
    """1.0 where a point (B, V, P, 3) lifted off its surface sees each light, else 0.0: (B, V, P, L).

    Rays go from each light (one shared origin per light: groups of the intersection code) to
    every point; anything hit before t = 1 lies between the light and the point.
    """
    b, v, p, _ = lifted.shape
    lights = batch.light_position  # (B, L, 3)
    directions = lifted.reshape(b, 1, v * p, 3) - lights[:, :, None]
    t = first_hit_distance(batch, lights[:, :, None], directions)  # (B, L, V * P)
    return (t >= 1).float().view(b, -1, v, p).permute(0, 2, 3, 1)


def camera_rays(
    intrinsic: torch.Tensor, extrinsic: torch.Tensor, image_size: tuple[int, int], supersample: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays of every (sub)pixel: origins (B, S, 1, 3), directions (B, S, H*k * W*k, 3), camera z = 1.

    Sub-pixel j of a k-times finer grid sits at pixel coordinate (j - (k - 1) / 2) / k, so for
    odd k the centre sub-pixel is exactly the pixel's ray (u, v).
    """
    height, width = image_size
    k = supersample
    device, dtype = intrinsic.device, intrinsic.dtype
    v = (torch.arange(height * k, device=device, dtype=dtype) - (k - 1) / 2) / k
    u = (torch.arange(width * k, device=device, dtype=dtype) - (k - 1) / 2) / k
    fx, fy = intrinsic[..., 0, 0, None, None], intrinsic[..., 1, 1, None, None]
    cx, cy = intrinsic[..., 0, 2, None, None], intrinsic[..., 1, 2, None, None]
    x = ((u[None, :] - cx) / fx).expand(*intrinsic.shape[:2], height * k, width * k)
    y = ((v[:, None] - cy) / fy).expand_as(x)
    camera_directions = torch.stack([x, y, torch.ones_like(x)], -1).flatten(2, 3)
    world_from_camera = inverse_se3(extrinsic)
    directions = camera_directions @ world_from_camera[..., :3, :3].transpose(-1, -2)
    return world_from_camera[:, :, None, :3, 3], directions


def trace_rays(
    batch: SceneBatch, origins: torch.Tensor, directions: torch.Tensor, shadows: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear radiance (B, V, P, 3), nearest t (B, V, P) and hit column (B, V, P) of camera rays.

    Origins (B, V, 1, 3), directions (B, V, P, 3): everything a chunk of rays needs, in one
    function so that torch.compile can fuse intersection, shading and shadow rays.
    """
    t, index = nearest_hits(batch, origins, directions)
    return _shade(batch, origins, directions, t, index, shadows), t, index


_compiled_trace_rays = None


def _tracer(config: RenderConfig):
    """``trace_rays``, compiled once per process when the config asks for it."""
    global _compiled_trace_rays
    if not config.compile:
        return trace_rays
    if _compiled_trace_rays is None:
        _compiled_trace_rays = torch.compile(trace_rays, dynamic=True)
    return _compiled_trace_rays


def render_views(
    batch: SceneBatch,
    intrinsic: torch.Tensor,
    extrinsic: torch.Tensor,
    image_size: tuple[int, int],
    config: RenderConfig,
) -> RenderedViews:
    """Render S views of each of B scenes.

    Args:
        batch: the scenes, on the rendering device.
        intrinsic: (B, S, 3, 3) float32 in pixels of (H, W) images.
        extrinsic: (B, S, 3, 4) float32 camera-from-world, OpenCV.
        image_size: (H, W).
        config: supersampling, shadows, chunking, compilation.
    """
    num_scenes, num_views = intrinsic.shape[:2]
    height, width = image_size
    k = config.supersample
    origins, directions = camera_rays(intrinsic, extrinsic, image_size, k)
    tracer = _tracer(config)
    chunk = max(1, config.rays_per_chunk // (num_scenes * num_views))
    outputs = [
        tracer(batch, origins, directions[:, :, begin : begin + chunk], config.shadows)
        for begin in range(0, directions.shape[2], chunk)
    ]
    radiance, t, index = (torch.cat(parts, 2) for parts in zip(*outputs, strict=True))
    fine = (num_scenes, num_views, height, k, width, k)
    rgb = radiance.view(*fine, 3).mean((3, 5)).clamp(0, 1) ** _GAMMA
    centre = (k - 1) // 2
    t = t.view(fine)[:, :, :, centre, :, centre]
    index = index.view(fine)[:, :, :, centre, :, centre]
    hit = torch.isfinite(t)
    return RenderedViews(
        rgb=rgb,
        depth=torch.where(hit, t, 0.0),
        instance_ids=torch.where(hit, _gather(batch.instance_id, index), 0),
        class_ids=torch.where(hit, _gather(batch.class_id, index), 0),
    )
