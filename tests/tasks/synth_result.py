"""A scene of the project's engine (iggt.synth) saved as an export folder, with ground truth in
place of the network's outputs: GT depth, cameras and instance IDs go through the real export path
(:func:`iggt.export.export_all`), so the tasks read exactly what `iggt reconstruct` writes.

Also the ground truth the tracking test needs beyond the export: for each instance and view, its
pixels when rendered alone (every other primitive removed), i.e. whether it lies in the frame at all.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from iggt.geometry import cameras_to_pose_encoding, depth_to_world_points
from iggt.structures import Instances, Predictions
from iggt.structures.scene import InstanceInfo
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_prepared
from iggt.synth.layout import SceneLayout
from iggt.synth.prepare import SceneRequest, prepare_scene
from iggt.synth.primitives import PrimitiveArrays, PrimitiveKind
from result_folder import write_result

RENDER = RenderConfig(shadows=False)
OCCLUDER_FRACTION = 0.3

SEED, TRAJECTORY = 25, "walk"
OCCLUDED = (10, 0)
"""Instance 10 (a chair) hidden from view 0 by an added sphere; it is out of frame in views 1 and
2 (the walk turns away) and re-enters in view 3."""


@dataclass
class SynthResult:
    folder: Path
    predictions: Predictions
    instances: Instances
    class_names: dict[int, str]  # instance ID -> class name
    alone_pixels: dict[int, np.ndarray]  # instance ID -> (S,) pixels when rendered alone


def _first_camera_frame(extrinsic: np.ndarray) -> np.ndarray:
    """(S, 3, 4) camera-from-world -> the same cameras with the first camera as the world frame."""
    homogeneous = np.concatenate([extrinsic, np.tile([[[0, 0, 0, 1.0]]], (len(extrinsic), 1, 1))], 1)
    return (homogeneous @ np.linalg.inv(homogeneous[0]))[:, :3].astype(np.float32)


def _only_instance(layout: SceneLayout, instance_id: int) -> SceneLayout:
    keep = layout.primitives.instance_id == instance_id
    primitives = PrimitiveArrays(**{f.name: getattr(layout.primitives, f.name)[keep] for f in fields(PrimitiveArrays)})
    return replace(layout, primitives=primitives)


def _with_occluder(layout: SceneLayout, extrinsic: np.ndarray, instance_id: int, view: int) -> SceneLayout:
    """The layout plus a sphere (a new instance) on the line from camera ``view`` to the instance, at
    OCCLUDER_FRACTION of the way, large enough to hide it from that camera (similar triangles)."""
    primitives = layout.primitives
    own = primitives.instance_id == instance_id
    centre = primitives.centre[own].mean(0)
    radius = np.linalg.norm(primitives.centre[own] - centre, axis=1).max() + np.abs(primitives.size[own]).max()
    eye = -extrinsic[view, :, :3].T @ extrinsic[view, :, 3]
    new_id = int(primitives.instance_id.max()) + 1
    row = {f.name: getattr(primitives, f.name)[own][:1].copy() for f in fields(PrimitiveArrays)}
    row.update(
        kind=np.array([int(PrimitiveKind.SPHERE)]),
        rotation=np.eye(3)[None],
        centre=(eye + OCCLUDER_FRACTION * (centre - eye))[None],
        size=np.full((1, 3), 1.2 * OCCLUDER_FRACTION * radius + 0.03),
        instance_id=np.array([new_id]),
    )
    joined = PrimitiveArrays(
        **{f.name: np.concatenate([getattr(primitives, f.name), row[f.name]]) for f in fields(PrimitiveArrays)}
    )
    instances = {**layout.instances, new_id: InstanceInfo("ball", "occluder")}
    return replace(layout, primitives=joined, instances=instances)


def render_synth_result(
    folder: Path,
    seed: int,
    trajectory: str,
    num_views: int = 8,
    size: tuple[int, int] = (48, 64),
    alone: bool = True,
    occlude: tuple[int, int] | None = None,
) -> SynthResult:
    """Render a scene and save it as an export folder. ``occlude=(instance, view)`` adds an occluder
    that hides the instance from that view; ``alone`` also renders every instance on its own."""
    config = SceneConfig(trajectory_weights={trajectory: 1.0})
    layout, cameras = prepare_scene(SceneRequest(seed, num_views, size), config)
    if occlude is not None:
        layout = _with_occluder(layout, cameras.extrinsic, *occlude)
    views = render_prepared([(layout, cameras)], size, RENDER, "cpu")
    images = views.rgb[0].numpy().astype(np.float32)
    depth = views.depth[0].numpy().astype(np.float32)
    labels = views.instance_ids[0].numpy().astype(np.int32)
    extrinsic = _first_camera_frame(cameras.extrinsic)
    intrinsic = cameras.intrinsic.astype(np.float32)
    points = (
        depth_to_world_points(
            torch.from_numpy(depth).double(), torch.from_numpy(intrinsic).double(), torch.from_numpy(extrinsic).double()
        )
        .float()
        .numpy()
    )
    confidence = np.ones_like(depth)
    features = np.ones(depth.shape + (1,), np.float32)
    predictions, instances = write_result(
        folder,
        images=images,
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        depth=depth,
        points=points,
        confidence=confidence,
        features=features,
        labels=labels,
        pose_enc=cameras_to_pose_encoding(torch.from_numpy(extrinsic), torch.from_numpy(intrinsic), size).numpy(),
        formats=("npz", "json", "masks"),
    )
    alone_pixels = {}
    if alone:
        ids = [int(i) for i in instances.ids]
        lone = render_prepared([(_only_instance(layout, i), cameras) for i in ids], size, RENDER, "cpu")
        alone_pixels = {i: (lone.instance_ids[row] == i).sum((1, 2)).numpy() for row, i in enumerate(ids)}
    class_names = {i: info.class_name for i, info in layout.instances.items()}
    return SynthResult(folder, predictions, instances, class_names, alone_pixels)
