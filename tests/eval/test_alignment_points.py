"""Umeyama / SE(3) / scale alignment and the point-cloud metrics, in float64."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from iggt.errors import InputError
from iggt.eval.alignment import Similarity, align_points, fit_scale, umeyama
from iggt.eval.points import point_cloud_metrics, point_map_metrics, point_map_normals


def random_similarity(rng: np.random.Generator) -> Similarity:
    rotation = Rotation.random(random_state=rng).as_matrix()
    return Similarity(float(np.exp(rng.uniform(-3, 3))), rotation, rng.normal(scale=10, size=3))


@pytest.mark.parametrize("seed", range(200))
def test_umeyama_recovers_random_sim3_to_float64_precision(seed):
    rng = np.random.default_rng(seed)
    truth = random_similarity(rng)
    source = rng.normal(size=(int(rng.integers(3, 500)), 3)) * rng.uniform(0.1, 10)
    fitted = umeyama(source, truth.apply(source))
    assert fitted.scale == pytest.approx(truth.scale, rel=1e-10)
    np.testing.assert_allclose(fitted.rotation, truth.rotation, atol=1e-10)
    np.testing.assert_allclose(fitted.translation, truth.translation, atol=1e-9 * (1 + truth.scale))
    assert np.linalg.det(fitted.rotation) == pytest.approx(1.0, abs=1e-12)


def test_umeyama_returns_a_rotation_for_reflected_targets():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(100, 3))
    fitted = umeyama(source, source * np.array([1.0, 1.0, -1.0]))  # a mirror image: no rotation fits exactly
    assert np.linalg.det(fitted.rotation) == pytest.approx(1.0, abs=1e-12)


def test_se3_keeps_unit_scale_and_recovers_rigid_motion():
    rng = np.random.default_rng(3)
    truth = Similarity(1.0, Rotation.random(random_state=rng).as_matrix(), rng.normal(size=3))
    source = rng.normal(size=(50, 3))
    fitted = align_points(source, truth.apply(source) * 1.0, "se3")
    assert fitted.scale == 1.0
    np.testing.assert_allclose(fitted.apply(source), truth.apply(source), atol=1e-12)


def test_scale_only_alignment_and_weights():
    rng = np.random.default_rng(4)
    source = rng.normal(size=(40, 3))
    assert fit_scale(source, 2.5 * source).scale == pytest.approx(2.5, rel=1e-12)
    # A zero-weight outlier does not move the fit.
    target = 2.5 * source
    target[0] += 100.0
    weights = np.ones(40)
    weights[0] = 0.0
    assert fit_scale(source, target, weights).scale == pytest.approx(2.5, rel=1e-12)
    assert umeyama(source, target, weights).scale == pytest.approx(2.5, rel=1e-12)


def test_alignment_rejects_too_few_points():
    with pytest.raises(InputError, match="at least 3"):
        umeyama(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(InputError, match="unknown point alignment"):
        align_points(np.zeros((5, 3)), np.zeros((5, 3)), "affine")


def plane_point_maps(num_views: int = 2, size: int = 12) -> np.ndarray:
    """(S, H, W, 3) point maps of a tilted wavy surface seen by a few cameras."""
    v, u = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    maps = []
    for view in range(num_views):
        x, y = u / size + 0.3 * view, v / size
        maps.append(np.stack([x, y, 2.0 + 0.3 * x + 0.1 * np.sin(3 * y)], -1))
    return np.stack(maps)


def test_point_map_normals_of_a_plane_are_its_normal():
    v, u = np.meshgrid(np.arange(6.0), np.arange(7.0), indexing="ij")
    plane = np.stack([u, v, 1.0 + 0.5 * u], -1)[None]  # z = 1 + x / 2: normal (-0.5, 0, 1) / |.|
    normals, has_normal = point_map_normals(plane)
    expected = np.array([-0.5, 0.0, 1.0]) / np.sqrt(1.25)
    assert has_normal.sum() == (6 - 2) * (7 - 2)  # interior pixels only
    np.testing.assert_allclose(np.abs(normals[has_normal] @ expected), 1.0, atol=1e-12)


def test_perfect_point_maps_give_perfect_scores():
    gt = plane_point_maps()
    valid = np.ones(gt.shape[:3], dtype=bool)
    result = point_map_metrics(gt.copy(), gt, valid)
    assert result["accuracy"] == pytest.approx(0.0, abs=1e-12)
    assert result["completeness"] == pytest.approx(0.0, abs=1e-12)
    assert result["chamfer"] == pytest.approx(0.0, abs=1e-12)
    assert result["normal_consistency"] == pytest.approx(1.0, abs=1e-12)


def test_global_similarity_is_removed_by_sim3_but_not_by_none():
    gt = plane_point_maps(3)
    valid = np.ones(gt.shape[:3], dtype=bool)
    valid[1, :3] = False
    transform = random_similarity(np.random.default_rng(7))
    pred = transform.apply(gt)
    aligned = point_map_metrics(pred, gt, valid, "sim3")
    assert aligned["chamfer"] == pytest.approx(0.0, abs=1e-9)
    assert aligned["normal_consistency"] == pytest.approx(1.0, abs=1e-9)
    assert aligned["alignment_scale"] == pytest.approx(1 / transform.scale, rel=1e-10)
    assert point_map_metrics(pred, gt, valid, "none")["chamfer"] > 1e-3


def test_known_offset_gives_known_accuracy_and_completeness():
    gt = np.array([[0.0, 0, 0], [10.0, 0, 0]])
    pred = np.array([[0.0, 0, 0.5], [10.0, 0, 0.5], [5.0, 0, 0]])  # the third point is 5 from both
    result = point_cloud_metrics(pred, gt)
    assert result["accuracy"] == pytest.approx((0.5 + 0.5 + 5.0) / 3)
    assert result["completeness"] == pytest.approx(0.5)
    assert result["chamfer"] == pytest.approx(((0.5 + 0.5 + 5.0) / 3 + 0.5) / 2)


def test_normal_consistency_of_perpendicular_normals_is_zero():
    points = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    up, side = np.tile([0.0, 0, 1], (2, 1)), np.tile([1.0, 0, 0], (2, 1))
    assert point_cloud_metrics(points, points, up, side)["normal_consistency"] == pytest.approx(0.0)
    assert point_cloud_metrics(points, points, up, -up)["normal_consistency"] == pytest.approx(1.0)
