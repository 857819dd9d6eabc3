"""GLB scenes (Blender, MeshLab, three.js): the point cloud coloured by RGB, by instance and by
PCA of the instance features, each with the camera frusta.

glTF's frame differs from ours (OpenCV): every vertex goes out through
:func:`iggt.geometry.opencv_to_gltf`, so the first camera looks along glTF's -z with y up and a
glTF viewer opens the scene the right way up.

Files: ``scene_rgb.glb``, ``scene_instances.glb``, ``scene_features.glb``; in each, a point
cloud named "points" (vertex colours) and one mesh per camera named "camera_<view>".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iggt.export.colours import instance_colours
from iggt.export.frusta import FIRST_CAMERA_COLOUR, OTHER_CAMERA_COLOUR, frustum_segments, segments_to_mesh
from iggt.export.gltf import Mesh
from iggt.export.gltf import write_glb as write_glb_file
from iggt.export.naming import view_names
from iggt.export.options import ExportOptions
from iggt.export.selection import public_exporter, select_points, to_uint8
from iggt.geometry import OPENCV_TO_GLTF, opencv_to_gltf
from iggt.structures import Instances, Predictions

FRUSTUM_WIDTH = 0.01
"""Half-width of a frustum edge, as a fraction of the frustum depth."""

PCA_FIT_SAMPLE = 100_000
GLTF_AXIS_SIGNS = np.diag(OPENCV_TO_GLTF).astype(np.float32)
""":func:`opencv_to_gltf` is a diagonal rotation: for the point cloud, a sign per axis in float32
(the file's type), where the (M, 3) float64 product took 0.9 s at 2 million points."""


def write_glb(predictions: Predictions, instances: Instances, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write the three GLB scenes into ``out_dir``; returns their paths."""
    selection = select_points(predictions, instances, options, options.max_points)
    features = predictions.instance_feat.reshape(-1, predictions.instance_feat.shape[-1])[selection.index]
    colourings = {
        "rgb": selection.rgb,
        "instances": instance_colours(selection.instance_id),
        "features": pca_colours(features, options.seed),
    }
    cameras = camera_meshes(predictions, options.frustum_depth or default_frustum_depth(predictions))
    points = selection.xyz * GLTF_AXIS_SIGNS
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, colours in colourings.items():
        rgba = np.concatenate([colours, np.full((len(colours), 1), 255, np.uint8)], 1)
        cloud = [Mesh("points", points, rgba)] if len(selection.xyz) else []
        written.append(write_glb_file(out_dir / f"scene_{name}.glb", cloud + cameras))
    return written


export_glb = public_exporter(write_glb)


def default_frustum_depth(predictions: Predictions) -> float:
    """A tenth of the median finite positive predicted depth (0.1 when there is none)."""
    depth = predictions.depth[np.isfinite(predictions.depth) & (predictions.depth > 0)]
    return 0.1 * float(np.median(depth)) if len(depth) else 0.1


def camera_meshes(predictions: Predictions, depth: float) -> list[Mesh]:
    """One thin-edged frustum mesh per view, in glTF coordinates, named "camera_<view>"."""
    segments = frustum_segments(predictions.extrinsic, predictions.intrinsic, predictions.image_size, depth)
    names = view_names(len(segments), "camera", suffix="")
    meshes = []
    for view, (name, edges) in enumerate(zip(names, segments, strict=True)):
        vertices, faces = segments_to_mesh(edges, FRUSTUM_WIDTH * depth)
        colour = FIRST_CAMERA_COLOUR if view == 0 else OTHER_CAMERA_COLOUR
        meshes.append(Mesh(name, opencv_to_gltf(vertices), np.tile(colour, (len(vertices), 1)), faces))
    return meshes


def pca_colours(features: np.ndarray, seed: int) -> np.ndarray:
    """(M, C) features -> (M, 3) uint8: the first three principal components, each stretched
    from its 1st to 99th percentile onto [0, 255] (fitted on a seeded subset of the rows)."""
    colours = np.full((len(features), 3), 0.5)
    finite = np.isfinite(features).all(1)
    if finite.sum() < 2:
        return to_uint8(colours)
    rows = np.flatnonzero(finite)
    fit = features[np.random.default_rng(seed).choice(rows, min(PCA_FIT_SAMPLE, len(rows)), replace=False)]
    mean = fit.mean(0)
    components = np.linalg.svd(fit - mean, full_matrices=False)[2][:3]
    projected = (features[rows] - mean) @ components.T
    low, high = np.percentile(projected, [1, 99], axis=0)
    colours[rows, : len(components)] = np.clip((projected - low) / np.maximum(high - low, 1e-12), 0, 1)
    return to_uint8(colours)
