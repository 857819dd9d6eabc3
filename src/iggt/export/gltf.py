"""Binary glTF 2.0 (``.glb``) files of vertex-coloured point clouds and triangle meshes, with numpy.

What iggt's GLB scenes need and no more: one node per mesh, each mesh one primitive with float32
positions (with the min/max glTF requires), normalised uint8 RGBA vertex colours and, for
triangles, uint32 indices. It replaces trimesh's scene assembly and export (about 1 s of the
example scene's export, with trimesh's import) and writes the same scene: tests/export read the
files back with trimesh. Identical byte blocks are stored once, as trimesh does.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GLB_MAGIC, GLB_VERSION = b"glTF", 2
JSON_CHUNK, BIN_CHUNK = b"JSON", b"BIN\0"
FLOAT, UNSIGNED_BYTE, UNSIGNED_INT = 5126, 5121, 5125
POINTS_MODE, TRIANGLES_MODE = 0, 4
POINT_MATERIAL = {"pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0, "roughnessFactor": 0}}
"""Points are drawn in their vertex colours: a white, non-metallic material (the one trimesh gives them)."""


@dataclass
class Mesh:
    """One named primitive: N vertices (N, 3) float32, colours (N, 4) uint8 RGBA, and faces
    (F, 3) int of triangles, or None for a point cloud."""

    name: str
    vertices: np.ndarray
    colours: np.ndarray
    faces: np.ndarray | None = None


def write_glb(path: Path, meshes: list[Mesh]) -> Path:
    """Write ``meshes`` as the nodes of one scene to ``path``; returns it."""
    document = _Document()
    gltf_meshes = [document.mesh(mesh) for mesh in meshes]
    body = b"".join(document.blocks)
    gltf = {
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "asset": {"version": "2.0", "generator": "iggt"},
        "accessors": document.accessors,
        "meshes": gltf_meshes,
        **({"materials": [POINT_MATERIAL]} if document.uses_point_material else {}),
        "nodes": [{"name": mesh.name, "mesh": index} for index, mesh in enumerate(meshes)],
        "buffers": [{"byteLength": len(body)}],
        "bufferViews": document.views,
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned: JSON pads with spaces, BIN with zeros
    length = 12 + 8 + len(text) + 8 + len(body)
    with open(path, "wb") as file:
        file.write(struct.pack("<4sII", GLB_MAGIC, GLB_VERSION, length))
        file.write(struct.pack("<I4s", len(text), JSON_CHUNK) + text)
        file.write(struct.pack("<I4s", len(body), BIN_CHUNK))
        file.write(body)
    return path


class _Document:
    """Accessors, buffer views and the bytes of one buffer, gathered mesh by mesh."""

    def __init__(self) -> None:
        self.accessors: list[dict] = []
        self.views: list[dict] = []
        self.blocks: list[bytes] = []
        self.offset = 0
        self.uses_point_material = False
        self._known: dict[tuple, int] = {}

    def mesh(self, mesh: Mesh) -> dict:
        vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
        attributes = {
            "POSITION": self._accessor(vertices, FLOAT, "VEC3", bounds=True),
            "COLOR_0": self._accessor(np.ascontiguousarray(mesh.colours, np.uint8), UNSIGNED_BYTE, "VEC4"),
        }
        primitive: dict = {"attributes": attributes}
        if mesh.faces is None:
            primitive |= {"mode": POINTS_MODE, "material": 0}
            self.uses_point_material = True
        else:
            indices = np.ascontiguousarray(mesh.faces, dtype=np.uint32).reshape(-1)
            primitive |= {"indices": self._accessor(indices, UNSIGNED_INT, "SCALAR"), "mode": TRIANGLES_MODE}
        return {"name": mesh.name, "primitives": [primitive]}

    def _accessor(self, values: np.ndarray, component: int, kind: str, bounds: bool = False) -> int:
        data = values.tobytes()
        key = (data, component, kind)
        if key in self._known:
            return self._known[key]
        accessor = {"bufferView": len(self.views), "componentType": component, "count": len(values), "type": kind}
        if component == UNSIGNED_BYTE:
            accessor["normalized"] = True
        if bounds and len(values):
            accessor |= {"min": values.min(0).tolist(), "max": values.max(0).tolist()}
        self.views.append({"buffer": 0, "byteOffset": self.offset, "byteLength": len(data)})
        self.blocks.append(data + b"\0" * (-len(data) % 4))
        self.offset += len(self.blocks[-1])
        self.accessors.append(accessor)
        self._known[key] = len(self.accessors) - 1
        return self._known[key]
