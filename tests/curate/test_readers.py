"""Capture layouts read as Scenes: InsScene-15K (per-frame cam/ files or the iPhone metadata), the
scene format and ScanNet folders through one entry point, and malformed folders."""

import numpy as np
import pytest
from PIL import Image

from iggt.curate.captures import detect_layout, read_capture
from iggt.errors import InputError, SceneFormatError
from iggt.io.scene_format import write_scene

STEMS = ["frame_000000", "frame_000010"]


def _write_insscene(scene, folder, cameras="files"):
    for name in ("images", "depth", "refined_ins_ids") + (("cam",) if cameras == "files" else ()):
        (folder / name).mkdir(parents=True, exist_ok=True)
    poses = []
    for index, stem in enumerate(STEMS):
        Image.fromarray(scene.images[index]).save(folder / "images" / f"{stem}.jpg", quality=95)
        Image.fromarray(np.round(scene.depth[index] * 1000).astype(np.uint16)).save(folder / "depth" / f"{stem}.png")
        np.save(folder / "refined_ins_ids" / f"{stem}.jpg.npy", scene.instance_ids[index].astype(np.int16))
        camera_to_world = np.linalg.inv(np.vstack([scene.extrinsic[index], [0, 0, 0, 1]]))
        poses.append(camera_to_world)
        if cameras == "files":
            # the keys the official demo.py reads: 'intrinsics' and 'pose' (camera-to-world)
            np.savez(folder / "cam" / f"{stem}.npz", intrinsics=scene.intrinsic[index], pose=camera_to_world)
    if cameras == "metadata":
        np.savez(
            folder / "scene_iphone_metadata.npz",
            images=np.array([f"{s}.jpg" for s in STEMS]),
            intrinsics=scene.intrinsic[:2],
            trajectories=np.stack(poses),
        )


@pytest.mark.parametrize("cameras", ["files", "metadata", "gt_files"])
def test_insscene_folders_read_with_cameras_inverted_to_camera_from_world(engine_scenes, tmp_path, cameras):
    scene = engine_scenes[0]
    _write_insscene(scene, tmp_path, cameras.removeprefix("gt_"))
    if cameras == "gt_files":  # the official demo's fallback folder names
        (tmp_path / "cam").rename(tmp_path / "gt_cam")
        (tmp_path / "depth").rename(tmp_path / "gt_depth")
    assert detect_layout(tmp_path) == "insscene"
    read = read_capture(tmp_path)
    assert read.frame_names == STEMS
    np.testing.assert_allclose(read.extrinsic, scene.extrinsic[:2], atol=1e-5)
    np.testing.assert_allclose(read.depth, scene.depth[:2], atol=5e-4)  # millimetre PNGs
    assert np.array_equal(read.instance_ids, scene.instance_ids[:2])


def _write_scannet(scene, folder):
    """color/ depth/ (mm) pose/ (camera-to-world) intrinsic/ as ScanNet exports them, stems 0, 1, ..."""
    for name in ("color", "depth", "pose", "intrinsic"):
        (folder / name).mkdir(parents=True)
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = scene.intrinsic[0]
    np.savetxt(folder / "intrinsic" / "intrinsic_depth.txt", intrinsic)
    for index in range(scene.num_views):
        Image.fromarray(scene.images[index]).save(folder / "color" / f"{index}.png")
        Image.fromarray(np.round(scene.depth[index] * 1000).astype(np.uint16)).save(folder / "depth" / f"{index}.png")
        np.savetxt(folder / "pose" / f"{index}.txt", np.linalg.inv(np.vstack([scene.extrinsic[index], [0, 0, 0, 1]])))


def test_scene_format_and_scannet_folders_read_through_the_same_entry(engine_scenes, tmp_path):
    scene = engine_scenes[0]
    write_scene(scene, tmp_path / "scene")
    assert detect_layout(tmp_path / "scene") == "scene"
    assert np.array_equal(read_capture(tmp_path / "scene").instance_ids, scene.instance_ids)
    _write_scannet(scene, tmp_path / "scannet")
    assert detect_layout(tmp_path / "scannet") == "scannet"
    read = read_capture(tmp_path / "scannet")
    np.testing.assert_allclose(read.extrinsic, scene.extrinsic, atol=1e-5)
    np.testing.assert_allclose(read.depth, scene.depth, atol=5e-4)
    with pytest.raises(InputError, match="is not a capture: expected scene.json"):
        read_capture(tmp_path)


def test_a_scannet_frame_without_its_pose_is_one_line(engine_scenes, tmp_path):
    _write_scannet(engine_scenes[0], tmp_path)
    (tmp_path / "pose" / "3.txt").unlink()
    with pytest.raises(SceneFormatError, match="frame 3 of .* has no pose file"):
        read_capture(tmp_path)


def _break(folder, case):
    stem = STEMS[1]
    if case == "missing depth":
        (folder / "depth" / f"{stem}.png").unlink()
    elif case == "depth size":
        Image.fromarray(np.zeros((10, 10), np.uint16)).save(folder / "depth" / f"{stem}.png")
    elif case == "ids size":
        np.save(folder / "refined_ins_ids" / f"{stem}.jpg.npy", np.zeros((3, 3), np.int16))
    elif case == "missing camera":
        (folder / "cam" / f"{stem}.npz").unlink()
    elif case == "camera keys":
        np.savez(folder / "cam" / f"{stem}.npz", K=np.eye(3))
    elif case == "not a rotation":
        np.savez(folder / "cam" / f"{stem}.npz", intrinsic=np.eye(3), extrinsic=np.ones((3, 4)))


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing depth", "frame frame_000010: depth/frame_000010.png missing"),
        ("depth size", "frame frame_000010: depth/frame_000010.png is \\(10, 10\\) but images/frame_000010.jpg is"),
        ("ids size", "frame frame_000010: refined_ins_ids/frame_000010.jpg.npy is \\(3, 3\\)"),
        ("missing camera", "frame frame_000010: cam/frame_000010.npz missing"),
        ("camera keys", "frame frame_000010: cam/frame_000010.npz needs 'intrinsic'"),
        ("not a rotation", "frame frame_000010: cam/frame_000010.npz 'extrinsic' rotation is not a rotation"),
    ],
)
def test_malformed_insscene_folders_name_the_frame_and_file(engine_scenes, tmp_path, case, message):
    _write_insscene(engine_scenes[0], tmp_path)
    _break(tmp_path, case)
    with pytest.raises(SceneFormatError, match=message):
        read_capture(tmp_path)
