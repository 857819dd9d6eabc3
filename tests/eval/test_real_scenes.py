"""Real-photo scenes from installed packages: the geometry must explain the photographs."""

import numpy as np
import torch

from iggt.eval.real_scenes import disparity_to_depth, middlebury_motorcycle, warp_depth_to_right
from iggt.geometry import depth_to_world_points, project_points


def test_disparity_to_depth_follows_middlebury_and_marks_unknown_pixels():
    disparity = np.array([[10.0, np.inf, np.nan, -40.0]], np.float32)
    depth = disparity_to_depth(disparity, focal=1000.0, baseline=0.2, doffs=30.0)
    np.testing.assert_allclose(depth, [[1000.0 * 0.2 / 40.0, 0, 0, 0]], rtol=1e-6)


def test_right_depth_keeps_the_nearest_surface_where_two_left_pixels_land_together():
    disparity = np.array([[0.0, 2.0, 1.0, 0.0]], np.float32)
    depth = np.array([[5.0, 2.0, 3.0, 0.0]], np.float32)  # pixel 3 has no ground truth
    # x - d: pixel 0 -> 0, pixel 1 -> -1 (outside), pixel 2 -> 1; nothing lands on 2 or 3.
    np.testing.assert_array_equal(warp_depth_to_right(disparity, depth), [[5.0, 3.0, 0.0, 0.0]])
    disparity = np.array([[0.0, 1.0]], np.float32)
    depth = np.array([[4.0, 2.5]], np.float32)  # both land on right pixel 0: the nearer wins
    np.testing.assert_array_equal(warp_depth_to_right(disparity, depth), [[2.5, 0.0]])


def _reprojection_error(scene, source: int, target: int, extrinsic: np.ndarray) -> float:
    """Mean colour difference of the source view's pixels with GT depth and where they land in the target."""
    depth = torch.from_numpy(scene.depth[source]).double()
    intrinsic = torch.from_numpy(scene.intrinsic).double()
    extrinsic = torch.from_numpy(extrinsic).double()
    points = depth_to_world_points(depth, intrinsic[source], extrinsic[source])
    valid = depth > 0
    uv, z = project_points(points[valid], intrinsic[target], extrinsic[target])
    column, row = uv.round().long().unbind(-1)
    height, width = depth.shape
    inside = (z > 0) & (column >= 0) & (column < width) & (row >= 0) & (row < height)
    images = torch.from_numpy(scene.images).double()
    seen = images[source][valid][inside]
    landed = images[target][row[inside], column[inside]]
    return float((seen - landed).abs().mean())


def test_motorcycle_depth_and_cameras_map_each_photo_onto_the_other():
    scene = middlebury_motorcycle()
    assert scene.images.shape == (2, 500, 741, 3) and scene.frame_names == ["left", "right"]
    assert (scene.depth[0] > 0).mean() > 0.9 and (scene.depth[1] > 0).mean() > 0.8
    assert 1.0 < np.median(scene.depth[0][scene.depth[0] > 0]) < 5.0  # metres: a motorcycle in a studio
    true = _reprojection_error(scene, 0, 1, scene.extrinsic)
    no_baseline = scene.extrinsic.copy()
    no_baseline[1, :, 3] = 0
    mirrored = scene.extrinsic.copy()
    mirrored[1, 0, 3] *= -1  # the right camera on the wrong side
    assert true < 0.4 * _reprojection_error(scene, 0, 1, no_baseline)
    assert true < 0.4 * _reprojection_error(scene, 0, 1, mirrored)
    assert _reprojection_error(scene, 1, 0, scene.extrinsic) < 0.4 * _reprojection_error(scene, 1, 0, mirrored)
    scene.intrinsic[1, 0, 2] -= 31.086  # the right principal point without Middlebury's doffs
    assert true < 0.4 * _reprojection_error(scene, 0, 1, scene.extrinsic)
