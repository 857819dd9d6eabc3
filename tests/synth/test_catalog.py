"""Object recipes: parts of one object never share a face plane where they overlap.

Two coplanar, overlapping faces facing the same way z-fight: which one a ray hits depends on float
rounding, so colours speckle and differ between CPU and GPU although depth and instance agree.
"""

import numpy as np
import pytest

from iggt.synth.catalog import FLOOR_RECIPES, MESH_RECIPES, SMALL_RECIPES, Part, box, object_top, picture, rug
from iggt.synth.primitives import PrimitiveKind

RECIPES = {
    **{name: (entry[0], 3.0) for name, entry in FLOOR_RECIPES.items()},
    **{name: (entry[0], 0.5) for name, entry in SMALL_RECIPES.items()},  # 0.5 m free above a support
    "picture": (picture, 3.0),
    "rug": (rug, 3.0),
}


def flat_faces(part: Part) -> list[tuple[int, int, float, np.ndarray, np.ndarray]]:
    """(axis, facing sign, plane offset, lower and upper corner in the other two axes) of each flat face.

    Frustum caps are bounded by their square, which only over-reports overlaps.
    """
    centre, size = np.array(part.centre), np.array(part.size)
    if part.kind == PrimitiveKind.BOX:
        low, high = centre - size, centre + size
        return [
            (axis, sign, centre[axis] + sign * size[axis], np.delete(low, axis), np.delete(high, axis))
            for axis in range(3)
            for sign in (-1, 1)
        ]
    if part.kind == PrimitiveKind.FRUSTUM:
        r_bottom, r_top, half_height = size
        return [
            (2, sign, centre[2] + sign * half_height, centre[:2] - radius, centre[:2] + radius)
            for sign, radius in ((-1, r_bottom), (1, r_top))
        ]
    return []


def coplanar_overlaps(parts: list[Part]) -> list[tuple[int, int]]:
    """Index pairs of parts with a same-facing face in the same plane whose areas overlap."""
    found = set()
    for i, first in enumerate(parts):
        for j in range(i + 1, len(parts)):
            for axis, sign, offset, low, high in flat_faces(first):
                for other_axis, other_sign, other_offset, other_low, other_high in flat_faces(parts[j]):
                    same_plane = (axis, sign) == (other_axis, other_sign) and abs(offset - other_offset) < 1e-9
                    if same_plane and (np.minimum(high, other_high) - np.maximum(low, other_low) > 1e-9).all():
                        found.add((i, j))
    return sorted(found)


def test_the_detector_finds_a_coplanar_overlap():
    base = box((0, 0, 0.5), (1, 1, 0.5))
    assert coplanar_overlaps([base, box((0.5, 0, 1.01), (0.5, 0.9, 0.5))]) == [(0, 1)]  # the +x face planes
    assert coplanar_overlaps([base, box((0.5, 0, 1.01), (0.49, 1.0, 0.5))]) == [(0, 1)]  # the +-y face planes
    assert coplanar_overlaps([base, box((0.5, 0, 1.01), (0.49, 0.9, 0.5))]) == []
    assert coplanar_overlaps([base, box((3.0, 0, 0.5), (1, 1, 0.5))]) == []  # same planes, apart


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_no_recipe_has_z_fighting_parts(name):
    recipe, free_height = RECIPES[name]
    for seed in range(100):
        model = recipe(np.random.default_rng(seed), free_height)
        assert coplanar_overlaps(model.parts) == [], (name, seed)


def triangle_vertices(part: Part) -> np.ndarray:
    """(3, 3) object-frame vertices of a triangle part."""
    length, apex_x, apex_y = part.size
    local = np.array([[0.0, 0.0, 0.0], [length, 0.0, 0.0], [apex_x, apex_y, 0.0]])
    return local @ part.rotation.T + np.array(part.centre)


@pytest.mark.parametrize("name", sorted(MESH_RECIPES))
def test_mesh_objects_are_closed_surfaces_resting_on_their_base(name):
    """Every edge is shared by exactly two faces (no holes to see into), and the lowest vertex is at z = 0."""
    recipe, _ = MESH_RECIPES[name]
    for seed in range(50):
        model = recipe(np.random.default_rng(seed), 0.5)
        assert all(part.kind == PrimitiveKind.TRIANGLE for part in model.parts)
        faces = [np.round(triangle_vertices(part), 9) for part in model.parts]
        edges: dict[tuple, int] = {}
        for face in faces:
            for a, b in ((0, 1), (1, 2), (2, 0)):
                key = tuple(sorted((tuple(face[a]), tuple(face[b]))))
                edges[key] = edges.get(key, 0) + 1
        assert len(faces) >= 8 and set(edges.values()) == {2}, (name, seed)
        vertices = np.concatenate(faces)
        assert vertices[:, 2].min() == pytest.approx(0.0, abs=1e-9)
        assert object_top(model) == pytest.approx(vertices[:, 2].max())
        assert (np.abs(vertices[:, :2]).max(0) <= np.array([model.half_x, model.half_y]) + 1e-9).all()
