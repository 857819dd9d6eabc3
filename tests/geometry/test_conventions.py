"""Conversions to other tools' conventions (iggt.geometry.conventions), on random float64 input."""

import numpy as np
import torch

from iggt.geometry import (
    OPENCV_TO_GLTF,
    colmap_pinhole_params,
    opencv_to_gltf,
    pixels_to_colmap,
    project_points,
)


def test_opencv_to_gltf_is_a_proper_rotation_that_undoes_itself():
    assert np.allclose(OPENCV_TO_GLTF @ OPENCV_TO_GLTF.T, np.eye(3)) and np.isclose(np.linalg.det(OPENCV_TO_GLTF), 1)
    points = np.random.default_rng(0).normal(size=(1000, 3))
    converted = opencv_to_gltf(points)
    np.testing.assert_allclose(np.linalg.norm(converted, axis=1), np.linalg.norm(points, axis=1), rtol=1e-15)
    np.testing.assert_array_equal(opencv_to_gltf(converted), points)


def test_the_opencv_camera_looks_along_gltf_minus_z_with_y_up():
    forward, down, right = np.eye(3)[2], np.eye(3)[1], np.eye(3)[0]
    np.testing.assert_array_equal(opencv_to_gltf(forward), [0, 0, -1])
    np.testing.assert_array_equal(opencv_to_gltf(-down), [0, 1, 0])  # OpenCV's up is glTF's +y
    np.testing.assert_array_equal(opencv_to_gltf(right), [1, 0, 0])


def colmap_pinhole_project(params, camera_points):
    """COLMAP's PINHOLE model: u = fx x / z + cx, v = fy y / z + cy (pixel centres at +0.5)."""
    fx, fy, cx, cy = params
    return np.stack(
        [fx * camera_points[:, 0] / camera_points[:, 2] + cx, fy * camera_points[:, 1] / camera_points[:, 2] + cy], 1
    )


def test_colmap_projects_a_point_where_we_do_in_its_pixel_convention():
    rng = np.random.default_rng(0)
    intrinsic = np.array(
        [[rng.uniform(50, 500), 0, rng.uniform(0, 300)], [0, rng.uniform(50, 500), rng.uniform(0, 300)], [0, 0, 1]]
    )
    points = np.concatenate([rng.uniform(-2, 2, (500, 2)), rng.uniform(0.5, 5, (500, 1))], 1)
    uv, _ = project_points(torch.from_numpy(points), torch.from_numpy(intrinsic), torch.eye(3, 4, dtype=torch.float64))
    colmap_uv = colmap_pinhole_project(colmap_pinhole_params(intrinsic), points)
    np.testing.assert_allclose(colmap_uv, pixels_to_colmap(uv.numpy()), rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(pixels_to_colmap(np.array([[0, 0], [3, 7]])), [[0.5, 0.5], [3.5, 7.5]])
