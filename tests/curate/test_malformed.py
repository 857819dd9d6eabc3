"""Malformed inputs not covered beside their readers: SA-V masklet files, COCO files of the wrong
shape, ScanNet and InsScene-15K folders missing a frame's file or camera, path B proposals of the
wrong size, and CLI options that do not fit the capture; each is one line naming what is wrong."""

import json

import numpy as np
import pytest
from PIL import Image

from iggt.cli.main import main
from iggt.curate.captures import read_capture
from iggt.curate.degrade import Degradation, degrade_masks
from iggt.curate.from_mesh import curate_with_mesh
from iggt.curate.mask_files import FrameMasks, read_frame_masks
from iggt.curate.mesh_labels import LabelledMesh
from iggt.curate.rle import encode_rle
from iggt.errors import IGGTError, InputError
from iggt.io.scene_format import write_scene

SIZE = (6, 8)


def _square() -> np.ndarray:
    mask = np.zeros(SIZE, dtype=bool)
    mask[1:4, 2:5] = True
    return mask


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {"masklet": [[{"size": [6, 8], "counts": "!!"}], [encode_rle(_square())]], "masklet_id": [4]},
            "frame f0: masks/auto_masks.json masklet 4 is corrupt RLE",
        ),
        (
            {"masklet": [[encode_rle(_square())], [encode_rle(np.ones((3, 3), bool))]], "masklet_id": [4]},
            "frame f1: masks/auto_masks.json masklet 4 is 3x3 but the frame is 6x8",
        ),
        (
            {"masklet": [[encode_rle(_square())], [encode_rle(_square())]], "masklet_id": ["a"]},
            "frame f0: masks/auto_masks.json 'masklet_id' must be a list of integers",
        ),
        (
            {"masklet": [[encode_rle(_square()), encode_rle(_square())], []], "masklet_id": [4]},
            "has 2 masklets in a frame but 1 'masklet_id' entries",
        ),
        ([1, 2], "frame f0: masks/auto_masks.json must hold SA-V masklets"),
    ],
)
def test_malformed_masklet_files_name_the_frame_and_file(tmp_path, content, message):
    (tmp_path / "masks").mkdir()
    path = tmp_path / "masks" / "auto_masks.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=message):
        read_frame_masks(tmp_path / "masks", ["f0", "f1"], SIZE)


def test_a_coco_file_that_is_not_a_list_of_masks_is_one_line(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "f0.json").write_text(json.dumps({"images": []}))
    with pytest.raises(InputError, match="frame f0: masks/f0.json must hold a list of COCO RLE masks"):
        read_frame_masks(tmp_path / "masks", ["f0"], SIZE)


def _scannet(scene, folder):
    for name in ("color", "depth", "pose", "intrinsic"):
        (folder / name).mkdir(parents=True)
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = scene.intrinsic[0]
    np.savetxt(folder / "intrinsic" / "intrinsic_depth.txt", intrinsic)
    for index in range(3):
        Image.fromarray(scene.images[index]).save(folder / "color" / f"{index}.png")
        Image.fromarray(np.round(scene.depth[index] * 1000).astype(np.uint16)).save(folder / "depth" / f"{index}.png")
        np.savetxt(folder / "pose" / f"{index}.txt", np.linalg.inv(np.vstack([scene.extrinsic[index], [0, 0, 0, 1]])))
    return folder


def test_a_scannet_frame_without_depth_or_with_a_bad_pose_is_one_line(engine_scenes, tmp_path):
    folder = _scannet(engine_scenes[0], tmp_path / "a")
    (folder / "depth" / "1.png").unlink()
    with pytest.raises(IGGTError, match="depth/1.png"):
        read_capture(folder)
    folder = _scannet(engine_scenes[0], tmp_path / "b")
    np.savetxt(folder / "pose" / "2.txt", np.eye(3))
    with pytest.raises(IGGTError, match="pose/2.txt must hold a 4 x 4 camera-to-world matrix"):
        read_capture(folder)


def _insscene_metadata(scene, folder, stems):
    for name in ("images", "depth"):
        (folder / name).mkdir(parents=True)
    for index, stem in enumerate(stems):
        Image.fromarray(scene.images[index]).save(folder / "images" / f"{stem}.png")
        Image.fromarray(np.round(scene.depth[index] * 1000).astype(np.uint16)).save(folder / "depth" / f"{stem}.png")
    poses = [np.linalg.inv(np.vstack([scene.extrinsic[i], [0, 0, 0, 1]])) for i in range(len(stems))]
    return poses


def test_an_insscene_frame_missing_from_the_iphone_metadata_is_one_line(engine_scenes, tmp_path):
    scene = engine_scenes[0]
    stems = ["frame_000000", "frame_000010", "frame_000020"]
    poses = _insscene_metadata(scene, tmp_path, stems)
    np.savez(
        tmp_path / "scene_iphone_metadata.npz",
        images=np.array([f"{s}.jpg" for s in stems[:2]]),
        intrinsics=scene.intrinsic[:2],
        trajectories=np.stack(poses[:2]),
    )
    with pytest.raises(IGGTError, match="frame frame_000020: images/frame_000020 has no camera"):
        read_capture(tmp_path)
    np.savez(
        tmp_path / "scene_iphone_metadata.npz",
        images=np.array([f"{s}.jpg" for s in stems]),
        intrinsics=scene.intrinsic[:2],
        trajectories=np.stack(poses),
    )
    with pytest.raises(IGGTError, match="unequal numbers of images and cameras"):
        read_capture(tmp_path)


def test_path_b_proposals_of_the_wrong_size_are_one_line(engine_scenes):
    scene = engine_scenes[0]
    mesh = LabelledMesh(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.zeros(3, np.int64), {}, {})
    rng = np.random.default_rng(0)
    proposals = [degrade_masks(ids, Degradation(), rng) for ids in scene.instance_ids]
    proposals[2] = FrameMasks(np.zeros((5, 5), np.int32), [])
    with pytest.raises(InputError, match="frame 000002: masks are \\(5, 5\\) but the frame is \\(60, 80\\)"):
        curate_with_mesh(scene, mesh, proposals)


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "--mesh is needed: the capture .* is not a ScanNet\\+\\+ scene"),
        (["--mesh", "m.ply", "--max-frames", "2"], "--max-frames applies to ScanNet and ScanNet\\+\\+ captures"),
    ],
)
def test_mesh_options_that_do_not_fit_the_capture_are_one_line(engine_scenes, tmp_path, capsys, extra, message):
    import re

    write_scene(engine_scenes[0], tmp_path / "room")
    argv = ["curate", "mesh", "--capture", str(tmp_path / "room"), "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error), error
