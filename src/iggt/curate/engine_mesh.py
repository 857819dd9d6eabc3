"""The scene engine's primitives as one labelled triangle mesh (to test path B where the truth is known).

Boxes become 12 triangles, spheres latitude-longitude meshes, frusta (cylinders, cones) capped
polygonal prisms, triangles themselves. Curved surfaces are inscribed polygons, so silhouettes
shrink by at most ``r (1 - cos(pi / segments))``. Each primitive is its own segment; segments of
one instance form one group, as ScanNet's aggregation files group over-segments into objects.
"""

from __future__ import annotations

import numpy as np

from iggt.curate.mesh_labels import LabelledMesh
from iggt.synth.layout import SceneLayout
from iggt.synth.primitives import PrimitiveKind

_BOX_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
_BOX_FACES = np.array(
    [
        [0, 1, 3],
        [0, 3, 2],
        [4, 6, 7],
        [4, 7, 5],
        [0, 4, 5],
        [0, 5, 1],
        [2, 3, 7],
        [2, 7, 6],
        [0, 2, 6],
        [0, 6, 4],
        [1, 5, 7],
        [1, 7, 3],
    ]
)


def _grid_faces(rows: int, columns: int) -> np.ndarray:
    """Triangles of a (rows + 1) x columns vertex grid wrapping around in the column direction."""
    faces = []
    for r in range(rows):
        for c in range(columns):
            a, b = r * columns + c, r * columns + (c + 1) % columns
            faces += [[a, b, b + columns], [a, b + columns, a + columns]]
    return np.array(faces)


def _sphere(segments: int) -> tuple[np.ndarray, np.ndarray]:
    latitude = np.linspace(0, np.pi, segments // 2 + 1)
    longitude = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    lat, lon = np.meshgrid(latitude, longitude, indexing="ij")
    points = np.stack([np.sin(lat) * np.cos(lon), np.sin(lat) * np.sin(lon), np.cos(lat)], -1).reshape(-1, 3)
    return points, _grid_faces(len(latitude) - 1, segments)


def _frustum(size: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    bottom, top, half = size
    angle = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.cos(angle), np.sin(angle)], -1)
    points = np.concatenate(
        [
            np.c_[ring * bottom, np.full(segments, -half)],
            np.c_[ring * top, np.full(segments, half)],
            [[0, 0, -half], [0, 0, half]],
        ]
    )
    caps = [[2 * segments, (c + 1) % segments, c] for c in range(segments)]
    caps += [[2 * segments + 1, segments + c, segments + (c + 1) % segments] for c in range(segments)]
    return points, np.concatenate([_grid_faces(1, segments), np.array(caps)])


def _local_mesh(kind: int, size: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == PrimitiveKind.BOX:
        return _BOX_CORNERS * size, _BOX_FACES
    if kind == PrimitiveKind.SPHERE:
        points, faces = _sphere(segments)
        return points * size[0], faces
    if kind == PrimitiveKind.FRUSTUM:
        return _frustum(size, segments)
    length, apex_x, apex_y = size
    return np.array([[0, 0, 0], [length, 0, 0], [apex_x, apex_y, 0]], dtype=np.float64), np.array([[0, 1, 2]])


def layout_mesh(layout: SceneLayout, segments: int = 32) -> LabelledMesh:
    """Every primitive of ``layout`` tessellated; vertex labels are the primitives' instance IDs."""
    primitives = layout.primitives
    vertices, faces, segment_of_vertex = [], [], []
    total = 0
    for index in range(len(primitives)):
        local, local_faces = _local_mesh(int(primitives.kind[index]), primitives.size[index], segments)
        vertices.append(local @ primitives.rotation[index].T + primitives.centre[index])
        faces.append(local_faces + total)
        segment_of_vertex.append(np.full(len(local), index))
        total += len(local)
    segment_instance = primitives.instance_id.astype(np.int64)
    return LabelledMesh(
        vertices=np.concatenate(vertices),
        faces=np.concatenate(faces).astype(np.int64),
        vertex_segment=np.concatenate(segment_of_vertex).astype(np.int64),
        segment_instance={int(s): int(i) for s, i in enumerate(segment_instance)},
        instance_names={i: info.class_name for i, info in layout.instances.items()},
    )
