"""Path C: the shipped model supplies depth and cameras for plain images; masks from a folder or
from the model's own instances, associated by path A."""

import numpy as np
import pytest
from PIL import Image

from iggt.curate.degrade import Degradation, degrade_masks
from iggt.curate.from_video import curate_video, frame_stems, own_instance_masks
from iggt.errors import InputError
from iggt.structures.scene import InstanceInfo, Scene
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_scenes


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four engine views as PNG files plus a folder of their (ID-shuffled) instance masks."""
    scene = next(
        render_scenes([7], 4, (112, 112), SceneConfig(trajectory_weights={"orbit": 1.0}), RenderConfig(shadows=False))
    )
    root = tmp_path_factory.mktemp("photos")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name, image, ids in zip(scene.frame_names, scene.images, scene.instance_ids, strict=True):
        Image.fromarray(image).save(root / "images" / f"view_{name}.png")
        labels = degrade_masks(ids, Degradation(), rng).labels
        Image.fromarray(labels.astype(np.uint16)).save(root / "masks" / f"view_{name}.png")
    return scene, root


def test_model_geometry_and_user_masks_give_a_curated_scene(photos):
    scene, root = photos
    curated = curate_video(root / "images", masks=root / "masks", device="cpu")
    assert curated.scene.frame_names == [f"view_{name}" for name in scene.frame_names]
    # the network's world is its first camera: it predicts that camera near identity (0.04 off here)
    np.testing.assert_allclose(curated.scene.extrinsic[0], np.eye(3, 4), atol=0.1)
    assert (curated.scene.depth > 0).mean() > 0.9
    assert curated.report.path == "video" and curated.scene.metadata["curation"]["masks"] == "user"
    ids = curated.scene.instance_ids
    assert not (ids[scene.instance_ids == 0] > 0).any()  # only pixels the user's masks cover get IDs
    assert max(len(row["frames"]) for row in curated.report.instances) >= 2  # linked across views


def test_a_masks_folder_missing_a_frame_is_one_line(photos, tmp_path):
    _, root = photos
    (tmp_path / "masks").mkdir()
    with pytest.raises(InputError, match="frame view_000000: no masks file masks/view_000000.png"):
        curate_video(root / "images", masks=tmp_path / "masks", device="cpu")


def test_own_instances_become_independent_per_frame_masks():
    ids = np.zeros((2, 4, 4), np.int32)
    ids[0, :2] = 5
    ids[1, 2:] = 5
    ids[1, :2] = 9
    capture = Scene(
        images=np.zeros((2, 4, 4, 3), np.uint8),
        depth=np.ones((2, 4, 4), np.float32),
        intrinsic=np.repeat(np.eye(3, dtype=np.float32)[None], 2, 0),
        extrinsic=np.repeat(np.eye(3, 4, dtype=np.float32)[None], 2, 0),
        instance_ids=ids,
        class_ids=None,
        frame_names=["a", "b"],
        instances={5: InstanceInfo("object", "iggt"), 9: InstanceInfo("object", "iggt")},
    )
    masks = own_instance_masks(capture)
    assert [m.count for m in masks] == [1, 2]
    assert masks[1].sources == ["iggt b instance 5", "iggt b instance 9"]


def test_frame_stems_are_plain_and_unique():
    assert frame_stems(["room/img 01.jpg", "clip.mp4#frame00010", "other/img 01.png"]) == [
        "img_01",
        "clip.mp4_frame00010",
        "img_01_000002",
    ]


def test_curate_video_with_iggts_own_instances_writes_a_scene(photos, tmp_path):
    import json

    from iggt.cli.main import main
    from iggt.io.scene_format import read_scene

    _, root = photos
    out = tmp_path / "curated"
    argv = ["curate", "video", "--input", str(root / "images"), "--out", str(out), "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    curated = read_scene(out / "images")
    report = json.loads((out / "curation_report.json").read_text())
    assert report["path"] == "video" and curated.metadata["curation"]["masks"] == "iggt"
    assert len(report["instances"]) == len(curated.instances) > 0
