"""Analytic scenes: primitives at known poses render the depth and labels geometry predicts."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iggt.geometry import depth_to_world_points
from iggt.synth.config import RenderConfig
from iggt.synth.layout import SceneLayout, yaw_matrix
from iggt.synth.primitives import Lighting, Material, PrimitiveKind, PrimitiveListBuilder, Texture, triangle_frame
from iggt.synth.renderer import SceneBatch, camera_rays, first_hit_distance, nearest_hits, render_views

HEIGHT, WIDTH, FOCAL = 48, 64, 40.0
PLAIN = Material(Texture.PLAIN, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0, (0.0, 0.0, 0.0))
AMBIENT = 0.3


def layout_of(primitives: list[tuple], light=(0.0, -5.0, -5.0)) -> SceneLayout:
    """A layout holding (kind, centre, size, rotation) primitives with instance IDs 1, 2, ..."""
    builder = PrimitiveListBuilder()
    for instance_id, (kind, centre, size, rotation) in enumerate(primitives, start=1):
        builder.add(kind, np.array(centre), np.array(size), rotation, instance_id, instance_id + 10, PLAIN)
    return SceneLayout(
        seed=0,
        room_size=np.array([10.0, 10.0, 3.0]),
        has_ceiling=False,
        primitives=builder.build(),
        lighting=Lighting(light, 1.0, 0.0, AMBIENT, (0.5, 0.6, 0.9)),
        instances={},
        obstacles=np.zeros((0, 3)),
        focus_points=np.zeros((1, 3)),
    )


def identity_camera() -> tuple[torch.Tensor, torch.Tensor]:
    """One camera at the world origin looking along +z, principal point at the image centre."""
    intrinsic = torch.tensor([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
    return intrinsic[None, None], torch.eye(3, 4)[None, None]


def render(primitives: list[tuple], supersample: int = 1, light=(0.0, -5.0, -5.0), shadows: bool = True):
    intrinsic, extrinsic = identity_camera()
    batch = SceneBatch.from_layouts([layout_of(primitives, light)], "cpu")
    config = RenderConfig(supersample=supersample, shadows=shadows)
    return render_views(batch, intrinsic, extrinsic, (HEIGHT, WIDTH), config)


def pixel_rays() -> np.ndarray:
    """(H, W, 3) float64 camera rays with z = 1 through every pixel."""
    v, u = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), indexing="ij")
    return np.stack([(u - WIDTH / 2) / FOCAL, (v - HEIGHT / 2) / FOCAL, np.ones_like(u, dtype=float)], -1)


def test_sphere_depth_matches_the_closed_form():
    centre, radius = np.array([0.3, -0.2, 5.0]), 1.2
    views = render([(PrimitiveKind.SPHERE, centre, (radius,) * 3, np.eye(3))])
    rays = pixel_rays()
    # |t d - c|^2 = r^2  ->  t = (d.c - sqrt((d.c)^2 - |d|^2 (|c|^2 - r^2))) / |d|^2
    dc, dd = rays @ centre, (rays * rays).sum(-1)
    discriminant = dc**2 - dd * (centre @ centre - radius**2)
    hit = discriminant > 1e-3  # away from the silhouette, where float32 may decide either way
    expected = (dc - np.sqrt(np.clip(discriminant, 0, None))) / dd
    depth = views.depth[0, 0].numpy()
    assert hit.sum() > 200
    np.testing.assert_allclose(depth[hit], expected[hit], rtol=1e-5)
    assert (views.instance_ids[0, 0].numpy()[hit] == 1).all()
    assert (views.class_ids[0, 0].numpy()[hit] == 11).all()
    assert (depth[discriminant < -1e-3] == 0).all()


def test_box_front_face_depth_and_silhouette():
    centre, half = np.array([0.5, -0.2, 6.0]), np.array([1.0, 0.8, 0.5])
    views = render([(PrimitiveKind.BOX, centre, half, np.eye(3))])
    rays = pixel_rays()
    front = centre[2] - half[2]
    on_face = (np.abs(rays[..., 0] * front - centre[0]) < half[0] - 1e-3) & (
        np.abs(rays[..., 1] * front - centre[1]) < half[1] - 1e-3
    )
    # Rays that miss the box's bounding sphere cannot hit it at all.
    far_away = (
        np.linalg.norm(np.cross(rays, centre) / np.linalg.norm(rays, axis=-1, keepdims=True), axis=-1)
        > np.linalg.norm(half) + 1e-3
    )
    depth = views.depth[0, 0].numpy()
    assert on_face.sum() > 100 and far_away.sum() > 100
    np.testing.assert_allclose(depth[on_face], front, rtol=1e-6)
    assert (depth[far_away] == 0).all() and (views.instance_ids[0, 0].numpy()[far_away] == 0).all()


@pytest.mark.parametrize(
    ("name", "size"),
    [("cylinder", (0.8, 0.8, 1.0)), ("cone", (1.0, 0.0, 1.0)), ("truncated cone", (0.4, 1.0, 0.7))],
)
def test_frustum_points_lie_on_its_surface(name, size):
    """Every pixel labelled with the frustum unprojects onto its side or one of its caps."""
    r_bottom, r_top, half_height = size
    centre = np.array([0.2, 0.1, 5.0])
    tilt = np.array([[1.0, 0, 0], [0, math.cos(1.0), -math.sin(1.0)], [0, math.sin(1.0), math.cos(1.0)]])
    rotation = yaw_matrix(0.4) @ tilt  # axis tilted towards the camera: side and one cap visible
    views = render([(PrimitiveKind.FRUSTUM, centre, size, rotation)])
    intrinsic, extrinsic = identity_camera()
    points = depth_to_world_points(views.depth[0, 0].double(), intrinsic[0, 0].double(), extrinsic[0, 0].double())
    labelled = views.instance_ids[0, 0] == 1
    assert labelled.sum() > 150, name
    local = (points[labelled].numpy() - centre) @ rotation
    radius = (r_top + r_bottom) / 2 + (r_top - r_bottom) / (2 * half_height) * local[:, 2]
    on_side = np.abs(np.hypot(local[:, 0], local[:, 1]) - radius) < 1e-3
    on_cap = (np.abs(np.abs(local[:, 2]) - half_height) < 1e-3) & (np.hypot(local[:, 0], local[:, 1]) <= radius + 1e-3)
    assert (np.abs(local[:, 2]) <= half_height + 1e-3).all()
    assert (on_side | on_cap).all()
    assert on_side.any() and on_cap.any()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (3, 3), elements=st.floats(-2.0, 2.0)))
def test_triangle_frame_maps_its_local_vertices_onto_the_triangle(vertices):
    edge_1, edge_2 = vertices[1] - vertices[0], vertices[2] - vertices[0]
    assume(np.linalg.norm(edge_1) > 0.05 and np.linalg.norm(np.cross(edge_1, edge_2)) > 0.05)
    rotation, (length, apex_x, apex_y) = triangle_frame(*vertices)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0) and length > 0 and apex_y > 0
    local = np.array([[0.0, 0.0, 0.0], [length, 0.0, 0.0], [apex_x, apex_y, 0.0]])
    np.testing.assert_allclose(local @ rotation.T + vertices[0], vertices, atol=1e-9)


def test_tilted_triangle_depth_and_silhouette():
    """A triangle tilted away from the camera: exact plane depth inside, nothing outside."""
    vertices = np.array([[-1.2, -0.8, 2.5], [1.0, -0.9, 3.0], [0.1, 1.0, 3.5]])
    rotation, size = triangle_frame(*vertices)
    views = render([(PrimitiveKind.TRIANGLE, vertices[0], size, rotation)])
    rays = pixel_rays()
    normal = np.cross(vertices[1] - vertices[0], vertices[2] - vertices[0])
    t = (vertices[0] @ normal) / (rays @ normal)  # camera at the origin, ray z = 1: t is the depth
    points = rays * t[..., None]
    # Signed distances (in metres) of each ray's plane point to the three edges, positive inside.
    inside_margin = np.full(t.shape, np.inf)
    for a, b, opposite in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        edge = vertices[b] - vertices[a]
        inward = np.cross(normal, edge)
        inward *= np.sign(inward @ (vertices[opposite] - vertices[a])) / np.linalg.norm(inward)
        inside_margin = np.minimum(inside_margin, (points - vertices[a]) @ inward)
    depth = views.depth[0, 0].numpy()
    inside, outside = inside_margin > 1e-3, inside_margin < -1e-3
    assert inside.sum() > 300 and outside.sum() > 300
    np.testing.assert_allclose(depth[inside], t[inside], rtol=1e-5)
    assert (views.instance_ids[0, 0].numpy()[inside] == 1).all()
    assert (depth[outside] == 0).all()


def test_mesh_faces_leave_no_crack():
    """Two triangles sharing a diagonal cover a square: every pixel inside it hits one of them."""
    corners = np.array([[-1.0, -1.0, 5.0], [1.0, -1.0, 5.0], [1.0, 1.0, 5.0], [-1.0, 1.0, 5.0]])
    faces = [triangle_frame(*corners[[0, 1, 2]]), triangle_frame(*corners[[0, 2, 3]])]
    primitives = [(PrimitiveKind.TRIANGLE, corners[0], size, rotation) for rotation, size in faces]
    views = render(primitives)
    rays = pixel_rays() * 5.0
    # Pixel rows and columns through the diagonal x = y sit exactly on the shared edge.
    square = (np.abs(rays[..., 0]) < 1 - 1e-3) & (np.abs(rays[..., 1]) < 1 - 1e-3)
    on_diagonal = square & (np.abs(rays[..., 0] - rays[..., 1]) < 1e-9)
    assert on_diagonal.sum() >= 10
    np.testing.assert_allclose(views.depth[0, 0].numpy()[square], 5.0, rtol=1e-6)
    assert (views.instance_ids[0, 0].numpy()[square] > 0).all()


def test_nearest_primitive_wins_and_supersampling_keeps_depth():
    """A sphere in front of a box occludes it; k x k supersampling leaves depth and labels exact."""
    primitives = [
        (PrimitiveKind.BOX, (0.0, 0.0, 6.0), (5.0, 5.0, 0.5), np.eye(3)),
        (PrimitiveKind.SPHERE, (0.0, 0.0, 4.0), (0.5, 0.5, 0.5), np.eye(3)),
    ]
    plain, fine = render(primitives), render(primitives, supersample=3)
    centre_pixel = (HEIGHT // 2, WIDTH // 2)
    assert plain.instance_ids[0, 0][centre_pixel] == 2
    assert plain.depth[0, 0][centre_pixel] == pytest.approx(3.5, rel=1e-6)
    assert plain.instance_ids[0, 0][2, 2] == 1  # a corner sees the box
    assert torch.equal(plain.depth, fine.depth) and torch.equal(plain.instance_ids, fine.instance_ids)
    assert not torch.equal(plain.rgb, fine.rgb)  # edges are antialiased


def test_a_shadow_falls_where_the_light_is_blocked():
    """Light at (2, 0, 0), a ball at (1, 0, 3): its shadow on the wall z = 5.5 covers the optical axis."""
    primitives = [
        (PrimitiveKind.BOX, (0.0, 0.0, 6.0), (5.0, 5.0, 0.5), np.eye(3)),
        (PrimitiveKind.SPHERE, (1.0, 0.0, 3.0), (0.3, 0.3, 0.3), np.eye(3)),
    ]
    lit, shadowed = (render(primitives, light=(2.0, 0.0, 0.0), shadows=s).rgb[0, 0] for s in (False, True))
    centre = (HEIGHT // 2, WIDTH // 2)
    ambient_only = (0.5 * AMBIENT) ** (1 / 2.2)  # plain albedo 0.5, no direct light
    assert shadowed[centre].tolist() == pytest.approx([ambient_only] * 3, rel=1e-5)
    assert (lit[centre] > shadowed[centre] + 0.1).all()
    assert torch.equal(lit[2, 2], shadowed[2, 2])  # far from the shadow nothing changes


def three_kinds_batch() -> SceneBatch:
    """A turned box behind a sphere and a frustum, in front of the identity camera."""
    primitives = [
        (PrimitiveKind.BOX, (0.0, 0.0, 6.0), (5.0, 5.0, 0.5), yaw_matrix(0.3)),
        (PrimitiveKind.SPHERE, (0.5, 0.0, 4.0), (0.5, 0.5, 0.5), np.eye(3)),
        (PrimitiveKind.FRUSTUM, (-1.0, 0.5, 4.5), (0.4, 0.1, 0.6), np.eye(3)),
    ]
    return SceneBatch.from_layouts([layout_of(primitives)], "cpu")


def test_first_hit_distance_is_the_nearest_hit():
    intrinsic, extrinsic = identity_camera()
    batch = three_kinds_batch()
    origins, directions = camera_rays(intrinsic, extrinsic, (HEIGHT, WIDTH), 1)
    nearest_t, _ = nearest_hits(batch, origins, directions)
    assert torch.isfinite(nearest_t).any() and torch.isinf(nearest_t).any()
    assert torch.equal(first_hit_distance(batch, origins, directions), nearest_t)


@pytest.mark.slow
def test_compiled_intersection_matches_eager():
    """torch.compile of ray tracing changes nothing but float rounding (minutes of compilation on CPU)."""
    intrinsic, extrinsic = identity_camera()
    batch = three_kinds_batch()
    eager = render_views(batch, intrinsic, extrinsic, (HEIGHT, WIDTH), RenderConfig())
    compiled = render_views(batch, intrinsic, extrinsic, (HEIGHT, WIDTH), RenderConfig(compile=True))
    assert torch.equal(eager.instance_ids, compiled.instance_ids)
    assert torch.allclose(eager.depth, compiled.depth, rtol=1e-6)
    assert torch.allclose(eager.rgb, compiled.rgb, atol=1e-5)
