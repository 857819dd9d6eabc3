"""Native ScanNet++ scenes: an engine room written in the ScanNet++ layout (mesh, segments and
annotations in scans/, iPhone frames with colour at twice the depth resolution and COLMAP-style
intrinsics, DSLR frames with OpenGL camera-to-world nerfstudio transforms) reads back with the
engine's cameras, path B reproduces the engine's masks from it, and malformed folders are one line."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from iggt.cli.main import main
from iggt.curate.captures import detect_layout, read_capture
from iggt.curate.engine_mesh import layout_mesh
from iggt.curate.from_mesh import curate_with_mesh
from iggt.curate.mesh_labels import read_scannet_mesh, write_scannet_mesh
from iggt.curate.scannetpp_reader import scannetpp_mesh_files
from iggt.eval.scannet_reader import scale_intrinsic
from iggt.io.scene_format import read_scene
from iggt.synth.config import RenderConfig, SceneConfig
from iggt.synth.generate import render_scenes
from iggt.synth.prepare import SceneRequest, prepare_scene

CONFIG = SceneConfig(trajectory_weights={"orbit": 1.0, "look_at": 1.0})
SEED, VIEWS, SIZE = 7, 4, (60, 80)
GL = np.diag([1.0, -1.0, -1.0, 1.0])
# a nerfstudio applied_transform (axes permuted, shifted) that the reader must undo
APPLIED = np.array([[0.0, 1, 0, 0.5], [1, 0, 0, -0.2], [0, 0, -1, 0.1]])


@pytest.fixture(scope="module")
def room():
    scene = next(render_scenes([SEED], VIEWS, SIZE, CONFIG, RenderConfig(shadows=False)))
    layout, _ = prepare_scene(SceneRequest(SEED, VIEWS, SIZE), CONFIG)
    return scene, layout_mesh(layout)


def _corner_intrinsic(intrinsic, from_size, to_size):
    """The engine's intrinsics (pixel centres at integers) at ``to_size``, with COLMAP's corner origin."""
    scaled = scale_intrinsic(intrinsic.astype(np.float64), from_size, to_size)
    scaled[:2, 2] += 0.5
    return scaled


def _camera_to_world(extrinsic):
    return np.linalg.inv(np.vstack([extrinsic, [0, 0, 0, 1]]))


def write_scannetpp(scene, mesh, folder):
    """The ScanNet++ release layout of an engine scene, iPhone and DSLR."""
    scans = folder / "scans"
    ply, segments, aggregation = write_scannet_mesh(mesh, scans, "tmp")
    ply.rename(scans / "mesh_aligned_0.05.ply")
    segments.rename(scans / "segments.json")
    aggregation.rename(scans / "segments_anno.json")
    for name in ("iphone/rgb", "iphone/depth", "dslr/resized_images", "dslr/nerfstudio"):
        (folder / name).mkdir(parents=True)
    colour_size = (2 * SIZE[0], 2 * SIZE[1])
    poses, frames = {}, []
    for index in range(scene.num_views):
        stem = f"frame_{10 * index:06d}"  # the toolkit keeps the video's frame numbers
        big = Image.fromarray(scene.images[index]).resize(colour_size[::-1], Image.Resampling.NEAREST)
        big.save(folder / "iphone" / "rgb" / f"{stem}.jpg", quality=95)
        depth_mm = np.round(scene.depth[index] * 1000).astype(np.uint16)
        Image.fromarray(depth_mm).save(folder / "iphone" / "depth" / f"{stem}.png")
        poses[stem] = {
            "timestamp": float(index),
            "intrinsic": _corner_intrinsic(scene.intrinsic[index], SIZE, colour_size).tolist(),
            "aligned_pose": _camera_to_world(scene.extrinsic[index]).tolist(),
        }
        Image.fromarray(scene.images[index]).save(folder / "dslr" / "resized_images" / f"DSC{index:05d}.JPG")
        world = np.vstack([APPLIED, [0, 0, 0, 1]])
        k = _corner_intrinsic(scene.intrinsic[index], SIZE, SIZE)  # the engine's views differ in focal length
        frames.append(
            {
                "file_path": f"DSC{index:05d}.JPG",
                "fl_x": k[0, 0],
                "fl_y": k[1, 1],
                "cx": k[0, 2],
                "cy": k[1, 2],
                "transform_matrix": (world @ _camera_to_world(scene.extrinsic[index]) @ GL).tolist(),
            }
        )
    (folder / "iphone" / "pose_intrinsic_imu.json").write_text(json.dumps(poses))
    k = _corner_intrinsic(scene.intrinsic[0], SIZE, SIZE)
    transforms = {
        "camera_model": "OPENCV_FISHEYE",
        "fl_x": k[0, 0],
        "fl_y": k[1, 1],
        "cx": k[0, 2],
        "cy": k[1, 2],
        "w": SIZE[1],
        "h": SIZE[0],
        "k1": 0.0,
        "k2": 0.0,
        "k3": 0.0,
        "k4": 0.0,
        "applied_transform": APPLIED.tolist(),
        "frames": frames[:-1],
        "test_frames": frames[-1:],
    }
    (folder / "dslr" / "nerfstudio" / "transforms.json").write_text(json.dumps(transforms))
    return folder


@pytest.mark.parametrize("device", ["iphone", "dslr"])
def test_scannetpp_captures_read_with_the_engines_cameras(room, tmp_path, device):
    scene, mesh = room
    folder = write_scannetpp(scene, mesh, tmp_path / "0a1b2c3d4e")
    assert detect_layout(folder) == "scannetpp"
    capture = read_capture(folder, f"scannetpp-{device}")
    assert capture.image_size == SIZE
    np.testing.assert_allclose(capture.extrinsic, scene.extrinsic, atol=1e-4)
    np.testing.assert_allclose(capture.intrinsic, scene.intrinsic, atol=1e-3)
    if device == "iphone":
        assert capture.frame_names == [f"frame_{10 * i:06d}" for i in range(VIEWS)]
        np.testing.assert_allclose(capture.depth, scene.depth, atol=5e-4)
        assert np.abs(capture.images.astype(int) - scene.images).mean() < 3  # colour brought to the depth size
    else:
        assert capture.frame_names == [f"DSC{i:05d}" for i in range(VIEWS)]  # test frame included
        assert not capture.depth.any()


@pytest.mark.parametrize("device", ["iphone", "dslr"])
def test_path_b_on_a_scannetpp_scene_reproduces_the_engine_masks(room, tmp_path, device):
    scene, mesh = room
    folder = write_scannetpp(scene, mesh, tmp_path / "scene")
    curated = curate_with_mesh(
        read_capture(folder, f"scannetpp-{device}"), read_scannet_mesh(*scannetpp_mesh_files(folder))
    )
    truth = scene.instance_ids
    assert (curated.scene.instance_ids == truth).mean() > 0.98
    agreement = curated.report.notes["rendered_depth_agrees_with_sensor"]
    assert agreement > 0.99 if device == "iphone" else agreement is None


def test_curate_mesh_takes_a_scannetpp_scene_without_mesh_options(room, tmp_path):
    scene, mesh = room
    folder = write_scannetpp(scene, mesh, tmp_path / "0a1b2c3d4e")
    out = tmp_path / "curated"
    argv = ["curate", "mesh", "--capture", str(folder), "--out", str(out), "--max-frames", "2", "--quiet"]
    assert main(argv) == 0
    curated = read_scene(out / "0a1b2c3d4e")
    assert curated.frame_names == ["frame_000000", "frame_000030"]
    assert (curated.instance_ids == scene.instance_ids[[0, 3]]).mean() > 0.98


def _break(folder, case):
    if case == "missing segments":
        (folder / "scans" / "segments.json").unlink()
    elif case == "vertex count":
        (folder / "scans" / "segments.json").write_text(json.dumps({"segIndices": [0, 0, 1]}))
    elif case == "pose missing":
        poses = json.loads((folder / "iphone" / "pose_intrinsic_imu.json").read_text())
        del poses["frame_000020"]
        (folder / "iphone" / "pose_intrinsic_imu.json").write_text(json.dumps(poses))
    elif case == "depth missing":
        (folder / "iphone" / "depth" / "frame_000020.png").unlink()
    elif case == "depth size":
        Image.fromarray(np.zeros((10, 30), np.uint16)).save(folder / "iphone" / "depth" / "frame_000020.png")
    elif case == "bad pose":
        poses = json.loads((folder / "iphone" / "pose_intrinsic_imu.json").read_text())
        poses["frame_000020"]["aligned_pose"] = [1, 2, 3]
        (folder / "iphone" / "pose_intrinsic_imu.json").write_text(json.dumps(poses))
    elif case == "fisheye":
        path = folder / "dslr" / "nerfstudio" / "transforms.json"
        transforms = json.loads(path.read_text())
        transforms["k1"] = 0.05
        path.write_text(json.dumps(transforms))
    elif case == "dslr pose missing":
        path = folder / "dslr" / "nerfstudio" / "transforms.json"
        transforms = json.loads(path.read_text())
        del transforms["frames"][1]["transform_matrix"]
        path.write_text(json.dumps(transforms))


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing segments", "scans/segments.json missing"),
        ("vertex count", "segments file .*segments.json labels 3 vertices but mesh .*mesh_aligned_0.05.ply has"),
        ("pose missing", "frame frame_000020: iphone/pose_intrinsic_imu.json has no 'aligned_pose'"),
        ("depth missing", "frame frame_000020: depth/frame_000020.png missing"),
        ("depth size", "frame frame_000020: depth/frame_000020.png is \\(10, 30\\) but rgb/frame_000020.jpg is"),
        ("bad pose", "frame frame_000020: iphone/pose_intrinsic_imu.json 'aligned_pose' must be a finite 4 x 4"),
        ("fisheye", "nerfstudio/transforms.json describes a distorted OPENCV_FISHEYE camera; run .*undistort.py"),
        ("dslr pose missing", "frame DSC00001: nerfstudio/transforms.json has no 'transform_matrix'"),
    ],
)
def test_malformed_scannetpp_scenes_are_one_line_naming_the_file(room, tmp_path, capsys, case, message):
    scene, mesh = room
    folder = write_scannetpp(scene, mesh, tmp_path / "scene")
    _break(folder, case)
    layout = "scannetpp-dslr" if case in ("fisheye", "dslr pose missing") else "scannetpp-iphone"
    argv = ["curate", "mesh", "--capture", str(folder), "--layout", layout, "--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error), error
    assert not (tmp_path / "o").exists()
