"""Batched ray-primitive intersection and surface normals, one function per primitive kind.

Rays come in groups that share an origin (one camera, or one light): directions (B, V, P, 3) for
B scenes, V groups and P rays per group, origins (B, V, 1, 3) (V may be 1 and broadcast).
Directions need not be unit length: with camera rays whose camera-frame z-component is 1, the
ray parameter t is exactly the z-depth. Intersection functions return t (B, V, P, N) of the first
surface point with t > ``min_t`` for the N primitives of each scene, +inf on a miss. Only entering
hits are reported, which is all a camera outside every object (or a light) ever needs. Shared
origins make every origin-only term (B, V, N)-sized instead of per ray.
"""

from __future__ import annotations

import torch

_HUGE = 1e30  # replaces 1 / 0 so that axis-parallel rays give finite slab bounds, never inf - inf


def to_local(
    origins: torch.Tensor, directions: torch.Tensor, rotation: torch.Tensor, centre: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays in the local frames of primitives with rotation (B, N, 3, 3), centre (B, N, 3).

    Returns local origins (B, V, 1, N, 3) and local directions (B, V, P, N, 3), where
    local = rotation^T (world - centre).
    """
    if torch.compiler.is_compiling():
        # Broadcast products, which the compiler fuses with the intersection test and the
        # nearest-hit reduction into one kernel; a matrix product would stay a separate kernel
        # writing (B, V, P, 3N) to memory.
        rows = rotation[:, None, None]  # (B, 1, 1, N, 3, 3): row j is world axis j in local coordinates
        local_directions = (
            directions[..., None, 0:1] * rows[..., 0, :]
            + directions[..., None, 1:2] * rows[..., 1, :]
            + directions[..., None, 2:3] * rows[..., 2, :]
        )
    else:
        # local_k = sum_j world_j R_jk for all N primitives at once: one (3 -> 3N) product per scene,
        # cheaper than broadcasting when every intermediate is materialised.
        batch, count = centre.shape[:2]
        flat_rotation = rotation.permute(0, 2, 1, 3).reshape(batch, 1, 3, count * 3)
        local_directions = (directions @ flat_rotation).unflatten(-1, (count, 3))
    offsets = origins[:, :, 0, None, :] - centre[:, None]  # (B, V, N, 3)
    local_origins = (offsets[..., None, :] @ rotation[:, None])[..., 0, :]
    return local_origins[:, :, None], local_directions


def intersect_boxes(
    local_origins: torch.Tensor, local_directions: torch.Tensor, half_extent: torch.Tensor, min_t: float
) -> torch.Tensor:
    """Slab test against boxes centred at the local origin; half_extent (B, N, 3) -> t (B, V, P, N).

    Per axis the ray is inside the slab for t in [-o/d - |h/d|, -o/d + |h/d|]; the box is entered
    at the largest lower bound and left at the smallest upper bound.
    """
    inverse = (1 / local_directions).clamp(-_HUGE, _HUGE)
    centre_t = local_origins * inverse
    half_t = (half_extent[:, None, None] * inverse).abs()
    t_near = -(centre_t + half_t).amin(-1)
    t_far = (half_t - centre_t).amin(-1)
    hit = (t_near <= t_far) & (t_near > min_t)
    return torch.where(hit, t_near, torch.inf)


def _quadratic_roots(a: torch.Tensor, half_b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Roots (low, high) of a t^2 + 2 half_b t + c = 0, NaN where there are none.

    Uses q = -(half_b + sign(half_b) sqrt(D)), roots q / a and c / q, which stays accurate when
    a is tiny (a ray almost parallel to a cylinder's axis) instead of cancelling catastrophically.
    """
    discriminant = half_b * half_b - a * c
    root = torch.sqrt(discriminant)
    q = -(half_b + torch.copysign(root, half_b))
    first, second = q / a, c / q
    return torch.minimum(first, second), torch.maximum(first, second)


def intersect_spheres(
    origins: torch.Tensor, directions: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor, min_t: float
) -> torch.Tensor:
    """World-frame rays against spheres centre (B, N, 3), radius (B, N) -> t (B, V, P, N).

    Needs no local frame: the only per-ray term is d . (o - c), one matrix product per group.
    """
    offsets = origins[:, :, 0, None, :] - centre[:, None]  # (B, V, N, 3)
    a = (directions * directions).sum(-1, keepdim=True)
    half_b = directions @ offsets.transpose(-1, -2)
    c = ((offsets * offsets).sum(-1) - (radius * radius)[:, None])[:, :, None]
    low, _ = _quadratic_roots(a, half_b, c)
    return torch.where(low > min_t, low, torch.inf)


def intersect_frustums(
    local_origins: torch.Tensor, local_directions: torch.Tensor, size: torch.Tensor, min_t: float
) -> torch.Tensor:
    """Capped frustums along local z; size (B, N, 3) = (r_bottom, r_top, half_height) -> t (B, V, P, N).

    The lateral surface is x^2 + y^2 = r(z)^2 with r(z) = r_mid + slope z for |z| <= half_height.
    """
    r_bottom, r_top, half_height = (size[:, None, None, :, i] for i in range(3))
    slope = (r_top - r_bottom) / (2 * half_height)
    r_mid = (r_top + r_bottom) / 2
    ox, oy, oz = local_origins.unbind(-1)
    dx, dy, dz = local_directions.unbind(-1)
    radius_at_origin = r_mid + slope * oz
    a = dx * dx + dy * dy - slope * slope * dz * dz
    half_b = ox * dx + oy * dy - slope * dz * radius_at_origin
    c = ox * ox + oy * oy - radius_at_origin * radius_at_origin
    best = torch.full_like(half_b, torch.inf)
    for t in _quadratic_roots(a, half_b, c):
        z = oz + t * dz
        best = torch.where((t > min_t) & (z.abs() <= half_height) & (t < best), t, best)
    for cap_z, cap_radius in ((-half_height, r_bottom), (half_height, r_top)):
        t = (cap_z - oz) / dz
        x, y = ox + t * dx, oy + t * dy
        inside = x * x + y * y <= cap_radius * cap_radius
        best = torch.where((t > min_t) & inside & (t < best), t, best)
    return best


def intersect_triangles(
    local_origins: torch.Tensor, local_directions: torch.Tensor, size: torch.Tensor, min_t: float
) -> torch.Tensor:
    """Triangles in their local z = 0 plane; size (B, N, 3) = (length, apex_x, apex_y) -> t (B, V, P, N).

    The plane is crossed at t = -o_z / d_z; the crossing (x, y) is inside when it lies on the inner
    side of all three edges of (0, 0), (length, 0), (apex_x, apex_y). Each edge test tolerates
    1e-6 of the triangle's doubled area, so rays through an edge shared by two faces of a mesh hit
    at least one of them (a pixel-sized crack otherwise).
    """
    length, apex_x, apex_y = (size[:, None, None, :, i] for i in range(3))
    ox, oy, oz = local_origins.unbind(-1)
    dx, dy, dz = local_directions.unbind(-1)
    t = -oz / dz
    x, y = ox + t * dx, oy + t * dy
    tolerance = -1e-6 * length * apex_y
    inside = (
        (y * length >= tolerance)
        & (apex_y * x - apex_x * y >= tolerance)
        & ((apex_x - length) * y - apex_y * (x - length) >= tolerance)
    )
    return torch.where(inside & (t > min_t), t, torch.inf)


def box_normals(local_points: torch.Tensor, half_extent: torch.Tensor) -> torch.Tensor:
    """Outward local normals (..., 3) of boxes at surface points: the face of the largest |p / half|."""
    ratio = local_points / half_extent
    axis = ratio.abs().argmax(-1, keepdim=True)
    normal = torch.zeros_like(local_points)
    return normal.scatter(-1, axis, torch.sign(ratio.gather(-1, axis)))


def sphere_normals(local_points: torch.Tensor) -> torch.Tensor:
    """Outward local normals (..., 3) of spheres centred at the local origin."""
    return local_points / local_points.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def triangle_normals(local_points: torch.Tensor) -> torch.Tensor:
    """Local normals (..., 3) of triangles: +z everywhere (the renderer turns them towards the viewer)."""
    zero = torch.zeros_like(local_points[..., 0])
    return torch.stack([zero, zero, torch.ones_like(zero)], -1)


def frustum_normals(local_points: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Outward local normals (..., 3) of capped frustums: the cap or side the point is closest to."""
    r_bottom, r_top, half_height = size.unbind(-1)
    slope = (r_top - r_bottom) / (2 * half_height)
    x, y, z = local_points.unbind(-1)
    radius = (r_top + r_bottom) / 2 + slope * z
    # The gradient of x^2 + y^2 - r(z)^2 is (2x, 2y, -2 r(z) slope).
    side = torch.stack([x, y, -radius * slope], -1)
    side = side / side.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    side_distance = ((x * x + y * y).sqrt() - radius).abs()
    cap_distance = (z.abs() - half_height).abs()
    cap = torch.zeros_like(local_points)
    cap[..., 2] = torch.sign(z)
    return torch.where((cap_distance < side_distance)[..., None], cap, side)
