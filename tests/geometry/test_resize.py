"""Property tests of the resize/crop pixel mapping (iggt.geometry.resize) on random float64 input."""

import numpy as np
import pytest
import torch

from iggt.geometry import (
    nearest_original_pixel,
    original_coordinate,
    original_intrinsics,
    project_points,
    resize_intrinsics,
    resized_coordinate,
)

RNG_SEED = 0
TOLERANCE = 1e-9  # float64 round trips of coordinates below ~1e4 pixels


def random_mappings(rng, n=1000):
    """Coordinates (n,), scales in [0.1, 10] and crop (negative) or pad (positive) offsets."""
    return rng.uniform(-10, 2000, n), np.exp(rng.uniform(np.log(0.1), np.log(10), n)), rng.integers(-500, 500, n)


def test_a_pixel_mapped_forward_and_back_is_itself():
    coordinate, scale, offset = random_mappings(np.random.default_rng(RNG_SEED))
    there = resized_coordinate(coordinate, scale, offset)
    np.testing.assert_allclose(original_coordinate(there, scale, offset), coordinate, atol=TOLERANCE)
    np.testing.assert_allclose(resized_coordinate(original_coordinate(coordinate, scale, offset), scale, offset),
                               coordinate, atol=TOLERANCE)  # fmt: skip


def test_pixel_edges_stay_edges_and_the_offset_shifts_the_whole_image():
    rng = np.random.default_rng(RNG_SEED)
    width, scale, offset = rng.integers(1, 3000, 100), rng.uniform(0.1, 10, 100), rng.integers(-500, 500, 100)
    np.testing.assert_allclose(resized_coordinate(-0.5, scale, offset), -0.5 + offset, atol=TOLERANCE)
    np.testing.assert_allclose(resized_coordinate(width - 0.5, scale, offset), width * scale - 0.5 + offset, atol=1e-8)


def test_a_crop_of_a_resize_composes_into_one_mapping():
    rng = np.random.default_rng(RNG_SEED)
    coordinate, first_scale, first_offset = random_mappings(rng)
    _, second_scale, second_offset = random_mappings(rng)
    twice = resized_coordinate(resized_coordinate(coordinate, first_scale, first_offset), second_scale, second_offset)
    once = resized_coordinate(coordinate, first_scale * second_scale, first_offset * second_scale + second_offset)
    np.testing.assert_allclose(twice, once, rtol=1e-12, atol=1e-8)
    shifted = resized_coordinate(coordinate, first_scale, 0) + first_offset  # the offset is a plain crop/pad shift
    np.testing.assert_allclose(resized_coordinate(coordinate, first_scale, first_offset), shifted, atol=TOLERANCE)


def test_the_nearest_original_pixel_is_the_one_under_the_target_pixel():
    rng = np.random.default_rng(RNG_SEED)
    target, scale, offset = (
        rng.integers(0, 500, 1000).astype(np.float64),
        rng.uniform(0.1, 10, 1000),
        rng.integers(-50, 50, 1000),
    )
    index = nearest_original_pixel(target, scale, offset)
    assert index.dtype == np.int64
    distance = original_coordinate(target, scale, offset) - index
    assert np.all((distance >= -0.5) & (distance < 0.5))
    # Enlarging never skips a pixel: every original centre maps to a target pixel that picks it back.
    centres = np.arange(200, dtype=np.float64)
    landed = np.round(resized_coordinate(centres, 3.0, -7))
    assert np.array_equal(nearest_original_pixel(landed, 3.0, -7), centres.astype(np.int64))


def test_numpy_and_torch_give_the_same_mapping():
    coordinate, scale, offset = random_mappings(np.random.default_rng(RNG_SEED))
    as_tensors = [torch.from_numpy(a) for a in (coordinate, scale, offset)]
    assert np.array_equal(resized_coordinate(*as_tensors).numpy(), resized_coordinate(coordinate, scale, offset))
    assert np.array_equal(original_coordinate(*as_tensors).numpy(), original_coordinate(coordinate, scale, offset))
    picked = nearest_original_pixel(*as_tensors)
    assert picked.dtype == torch.int64
    assert np.array_equal(picked.numpy(), nearest_original_pixel(coordinate, scale, offset))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_resized_intrinsics_project_where_the_resized_pixel_lies(backend):
    rng = np.random.default_rng(RNG_SEED)
    intrinsic = np.array(
        [[rng.uniform(50, 500), 0.3, rng.uniform(0, 300)], [0, rng.uniform(50, 500), rng.uniform(0, 300)], [0, 0, 1]]
    )
    points = np.concatenate([rng.uniform(-2, 2, (500, 2)), rng.uniform(0.5, 5, (500, 1))], 1)
    scale_x, scale_y, left, top = 0.37, 1.9, -13, 4
    to_array = torch.from_numpy if backend == "torch" else np.asarray
    resized = resize_intrinsics(to_array(intrinsic), scale_x, scale_y, left, top)
    assert type(resized) is type(to_array(intrinsic))
    identity = torch.eye(3, 4, dtype=torch.float64)
    uv, _ = project_points(torch.from_numpy(points), torch.from_numpy(intrinsic), identity)
    uv_resized, _ = project_points(torch.from_numpy(points), torch.as_tensor(resized), identity)
    expected = resized_coordinate(uv.numpy(), np.array([scale_x, scale_y]), np.array([left, top]))
    np.testing.assert_allclose(uv_resized.numpy(), expected, rtol=1e-12, atol=1e-9)
    back = original_intrinsics(resized, scale_x, scale_y, left, top)
    np.testing.assert_allclose(np.asarray(back), intrinsic, rtol=1e-12, atol=1e-12)


def test_an_infinite_focal_length_stays_infinite_without_nan():
    intrinsic = np.array([[np.inf, 0, 10.0], [0, np.inf, 8.0], [0, 0, 1]])
    resized = resize_intrinsics(intrinsic, 0.5, 0.5, -3, 0)
    assert np.isposinf(resized[0, 0]) and np.isposinf(resized[1, 1]) and not np.isnan(resized).any()
    assert resized[0, 2] == resized_coordinate(10.0, 0.5, -3)
