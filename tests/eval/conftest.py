"""Tiny synthetic scenes for the runner tests, and a writer of the ScanNet-style layout."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from iggt.structures.scene import InstanceInfo, Scene


def synthetic_scene(num_views: int = 3, height: int = 48, width: int = 64, seed: int = 0) -> Scene:
    """Tilted planes seen by slightly rotated cameras; objects 1..3 are blocks in every view."""
    rng = np.random.default_rng(seed)
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    depth = np.stack([2.0 + 0.01 * columns + 0.005 * view * rows for view in range(num_views)])
    ids = np.zeros((num_views, height, width), dtype=np.int32)
    for view in range(num_views):
        ids[view, 4:20, 4 + 2 * view : 24 + 2 * view] = 1
        ids[view, 24:44, 8:30] = 2
        ids[view, 10:40, 36 : 60 - view] = 3
    rotation = Rotation.from_rotvec(rng.normal(scale=0.1, size=(num_views, 3))).as_matrix()
    extrinsic = np.concatenate([rotation, rng.normal(scale=0.5, size=(num_views, 3, 1))], axis=2)
    intrinsic = np.array([[50.0, 0, (width - 1) / 2], [0, 50.0, (height - 1) / 2], [0, 0, 1]])
    return Scene(
        images=rng.integers(0, 256, size=(num_views, height, width, 3), dtype=np.uint8),
        depth=depth.astype(np.float32),
        intrinsic=np.repeat(intrinsic[None], num_views, axis=0).astype(np.float32),
        extrinsic=extrinsic.astype(np.float32),
        instance_ids=ids,
        class_ids=np.where(ids > 0, ids + 10, 0).astype(np.int32),
        frame_names=[f"{i:06d}" for i in range(num_views)],
        instances={i: InstanceInfo(class_name="box", kind="test") for i in (1, 2, 3)},
    )


def write_scannet_layout(scene: Scene, folder: Path, stems: list[str], invalid_pose_stem: str | None = None) -> None:
    """Write ``scene`` as color/ depth/ (mm PNG) pose/ intrinsic/ instance/ label/ with the given stems."""
    for name in ("color", "depth", "pose", "intrinsic", "instance", "label"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = scene.intrinsic[0]
    np.savetxt(folder / "intrinsic" / "intrinsic_color.txt", intrinsic)
    for index, stem in enumerate(stems):
        Image.fromarray(scene.images[index]).save(folder / "color" / f"{stem}.png")
        millimetres = np.round(scene.depth[index] * 1000).astype(np.uint16)
        Image.fromarray(millimetres).save(folder / "depth" / f"{stem}.png")
        camera_from_world = np.eye(4)
        camera_from_world[:3] = scene.extrinsic[index]
        np.savetxt(folder / "pose" / f"{stem}.txt", np.linalg.inv(camera_from_world))
        Image.fromarray(scene.instance_ids[index].astype(np.uint8)).save(folder / "instance" / f"{stem}.png")
        np.save(folder / "label" / f"{stem}.npy", scene.class_ids[index].astype(np.int16))
    if invalid_pose_stem is not None:
        Image.fromarray(scene.images[0]).save(folder / "color" / f"{invalid_pose_stem}.png")
        np.savetxt(folder / "pose" / f"{invalid_pose_stem}.txt", np.full((4, 4), -np.inf))


@pytest.fixture
def make_scene():
    """The :func:`synthetic_scene` factory (conftest modules are not imported by tests directly)."""
    return synthetic_scene


@pytest.fixture
def write_scannet():
    """The :func:`write_scannet_layout` writer."""
    return write_scannet_layout
