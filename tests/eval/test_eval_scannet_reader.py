"""The ScanNet-style reader on a tiny layout written by the test itself."""

import numpy as np
import pytest
from PIL import Image

from iggt.errors import SceneFormatError
from iggt.eval.scannet_reader import list_scannet_scenes, read_scannet_scene, scale_intrinsic


def test_round_trip_of_a_tiny_layout(make_scene, write_scannet, tmp_path):
    scene = make_scene(num_views=3)
    folder = tmp_path / "scene0000_00"
    write_scannet(scene, folder, stems=["0", "2", "10"], invalid_pose_stem="5")
    read = read_scannet_scene(folder)
    assert read.frame_names == ["0", "2", "10"]  # numeric order; frame 5 (pose -inf) skipped
    np.testing.assert_array_equal(read.images, scene.images)
    np.testing.assert_allclose(read.depth, scene.depth, atol=5e-4)  # millimetre PNGs
    np.testing.assert_allclose(read.extrinsic, scene.extrinsic, atol=1e-5)
    np.testing.assert_allclose(read.intrinsic, scene.intrinsic, atol=1e-6)
    np.testing.assert_array_equal(read.instance_ids, scene.instance_ids)
    np.testing.assert_array_equal(read.class_ids, scene.class_ids)
    assert sorted(read.instances) == [1, 2, 3]
    assert list_scannet_scenes(tmp_path) == [folder] and list_scannet_scenes(folder) == [folder]


def test_views_are_spread_over_the_valid_frames(make_scene, write_scannet, tmp_path):
    scene = make_scene(num_views=3)
    write_scannet(scene, tmp_path, stems=["0", "1", "2"])
    assert read_scannet_scene(tmp_path, views=2).frame_names == ["0", "2"]


def test_colour_is_brought_to_the_depth_resolution(make_scene, write_scannet, tmp_path):
    scene = make_scene(num_views=1, height=48, width=64)
    write_scannet(scene, tmp_path, stems=["0"])
    half = np.round(scene.depth[0, ::2, ::2] * 1000).astype(np.uint16)
    Image.fromarray(half).save(tmp_path / "depth" / "0.png")  # depth at 24 x 32, colour at 48 x 64
    read = read_scannet_scene(tmp_path)
    assert read.images.shape == (1, 24, 32, 3) and read.instance_ids.shape == (1, 24, 32)
    expected = scale_intrinsic(scene.intrinsic[0].astype(np.float64), (48, 64), (24, 32))
    np.testing.assert_allclose(read.intrinsic[0], expected, atol=1e-6)
    assert expected[0, 0] == pytest.approx(25.0) and expected[0, 2] == pytest.approx((64 - 1) / 2 / 2 - 0.25)
    # With intrinsic_depth.txt present, the depth camera's intrinsics are used as they are.
    depth_intrinsic = np.diag([20.0, 21.0, 1.0])
    np.savetxt(tmp_path / "intrinsic" / "intrinsic_depth.txt", depth_intrinsic)
    np.testing.assert_allclose(read_scannet_scene(tmp_path).intrinsic[0], depth_intrinsic)


def test_errors_name_the_problem(make_scene, write_scannet, tmp_path):
    with pytest.raises(SceneFormatError, match="color/ and pose/"):
        read_scannet_scene(tmp_path)
    write_scannet(make_scene(num_views=1), tmp_path, stems=["0"])
    (tmp_path / "pose" / "0.txt").unlink()
    with pytest.raises(SceneFormatError, match="no pose file"):
        read_scannet_scene(tmp_path)
