"""The numpy GLB writer, read back with trimesh (an independent glTF reader)."""

import json
import struct

import numpy as np
import trimesh

from iggt.export.gltf import Mesh, write_glb


def test_points_and_triangle_meshes_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3)).astype(np.float32)
    point_colours = rng.integers(0, 256, (50, 4), dtype=np.uint8)
    triangle = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    red = np.tile(np.array([230, 60, 60, 255], np.uint8), (4, 1))
    meshes = [
        Mesh("points", points, point_colours),
        Mesh("camera_000", triangle, red, faces),
        Mesh("camera_001", triangle + 2, red, faces),  # same faces and colours: stored once
    ]
    path = write_glb(tmp_path / "scene.glb", meshes)
    loaded = trimesh.load(path)
    assert sorted(loaded.geometry) == ["camera_000", "camera_001", "points"]
    cloud = loaded.geometry["points"]
    assert isinstance(cloud, trimesh.PointCloud)
    assert np.array_equal(cloud.vertices, points) and np.array_equal(cloud.colors, point_colours)
    for name, offset in (("camera_000", 0), ("camera_001", 2)):
        mesh = loaded.geometry[name]
        assert np.array_equal(mesh.vertices, triangle + offset) and np.array_equal(mesh.faces, faces)
        assert np.array_equal(mesh.visual.vertex_colors, red)
    document = read_json_chunk(path)
    assert len(document["bufferViews"]) == 2 + 3 + 1  # points; camera_000; camera_001 shares its colours, faces
    assert document["accessors"][0]["min"] == points.min(0).tolist()
    assert path.stat().st_size % 4 == 0


def test_a_scene_without_points_has_no_material(tmp_path):
    triangle = np.eye(3, dtype=np.float32)
    colours = np.full((3, 4), 255, np.uint8)
    path = write_glb(tmp_path / "scene.glb", [Mesh("camera_000", triangle, colours, np.array([[0, 1, 2]]))])
    assert "materials" not in read_json_chunk(path)
    assert sorted(trimesh.load(path).geometry) == ["camera_000"]


def read_json_chunk(path) -> dict:
    data = path.read_bytes()
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert (magic, version, length) == (b"glTF", 2, len(data))
    size, kind = struct.unpack("<I4s", data[12:20])
    assert kind == b"JSON"
    return json.loads(data[20 : 20 + size])
