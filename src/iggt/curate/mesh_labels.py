"""A triangle mesh with per-vertex instance labels, in the ScanNet / ScanNet++ layout.

    <scene>_vh_clean_2.ply                 vertices (x, y, z in metres, world frame) and faces
    <scene>_vh_clean_2.*.segs.json         {"segIndices": [over-segment of every vertex]}
    <scene>.aggregation.json               {"segGroups": [{"objectId", "label", "segments": [...]}]}

Instance ID = objectId + 1 (0 = a vertex in no group). A face takes the label two or three of its
vertices share (else its first vertex's), so object borders run along mesh edges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iggt.errors import InputError


@dataclass
class LabelledMesh:
    """Attributes:
    vertices: (V, 3) float64 world points; faces: (F, 3) int64 vertex indices.
    vertex_segment: (V,) int64 over-segment of each vertex.
    segment_instance: over-segment -> instance ID (> 0); segments missing are unlabelled.
    instance_names: instance ID -> semantic label.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_segment: np.ndarray
    segment_instance: dict[int, int]
    instance_names: dict[int, str]

    def vertex_instance(self) -> np.ndarray:
        """(V,) instance ID of every vertex, 0 = unlabelled."""
        segments = np.unique(self.vertex_segment)
        lookup = {int(s): self.segment_instance.get(int(s), 0) for s in segments}
        return (
            np.vectorize(lookup.get, otypes=[np.int64])(self.vertex_segment) if len(segments) else self.vertex_segment
        )

    def face_instance(self) -> np.ndarray:
        """(F,) instance ID of every face: the label most of its vertices carry."""
        a, b, c = self.vertex_instance()[self.faces].T
        return np.where((a == b) | (a == c), a, np.where(b == c, b, a))


def _load_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{what} {path} is not readable JSON ({exc})") from exc


def read_scannet_mesh(ply: str | Path, segments: str | Path, aggregation: str | Path) -> LabelledMesh:
    """The mesh and its labels; InputError naming the file for anything malformed."""
    from plyfile import PlyData, PlyParseError

    try:
        data = PlyData.read(str(ply))
        vertex = data["vertex"]
        vertices = np.stack([vertex["x"], vertex["y"], vertex["z"]], -1).astype(np.float64)
        face_element = data["face"]
        key = "vertex_indices" if "vertex_indices" in face_element.data.dtype.names else "vertex_index"
        faces = np.stack([np.asarray(f, dtype=np.int64) for f in face_element[key]])
    except (OSError, KeyError, ValueError, PlyParseError) as exc:
        raise InputError(f"mesh {ply} is not a PLY with vertices x, y, z and triangle faces ({exc})") from exc
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min(initial=0) < 0 or faces.max(initial=0) >= len(vertices):
        raise InputError(f"mesh {ply} must have triangle faces indexing its {len(vertices)} vertices")
    vertex_segment = np.asarray(_load_json(segments, "segments file").get("segIndices", []), dtype=np.int64)
    if len(vertex_segment) != len(vertices):
        raise InputError(
            f"segments file {segments} labels {len(vertex_segment)} vertices but mesh {ply} has {len(vertices)}"
        )
    groups = _load_json(aggregation, "aggregation file").get("segGroups")
    if not isinstance(groups, list):
        raise InputError(f"aggregation file {aggregation} has no 'segGroups' list")
    segment_instance, names = {}, {}
    for group in groups:
        try:
            instance = int(group["objectId"]) + 1
            names[instance] = str(group.get("label", "object"))
            for segment in group["segments"]:
                segment_instance[int(segment)] = instance
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"aggregation file {aggregation} has a malformed segGroup ({exc})") from exc
    return LabelledMesh(vertices, faces, vertex_segment, segment_instance, names)


def write_scannet_mesh(mesh: LabelledMesh, folder: str | Path, name: str) -> tuple[Path, Path, Path]:
    """Write the three ScanNet files into ``folder``; returns (ply, segments, aggregation) paths."""
    from plyfile import PlyData, PlyElement

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vertex = np.array(
        [tuple(v) for v in mesh.vertices.astype(np.float32)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")]
    )
    face = np.empty(len(mesh.faces), dtype=[("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = mesh.faces
    ply = folder / f"{name}_vh_clean_2.ply"
    PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")]).write(str(ply))
    segments = folder / f"{name}_vh_clean_2.0.010000.segs.json"
    segments.write_text(json.dumps({"sceneId": name, "segIndices": mesh.vertex_segment.tolist()}))
    by_instance: dict[int, list[int]] = {}
    for segment, instance in sorted(mesh.segment_instance.items()):
        by_instance.setdefault(instance, []).append(segment)
    groups = [
        {"id": i - 1, "objectId": i - 1, "label": mesh.instance_names.get(i, "object"), "segments": s}
        for i, s in sorted(by_instance.items())
    ]
    aggregation = folder / f"{name}.aggregation.json"
    aggregation.write_text(json.dumps({"sceneId": name, "segGroups": groups, "segmentsFile": segments.name}))
    return ply, segments, aggregation
