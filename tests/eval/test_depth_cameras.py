"""Depth and camera metrics: perfect predictions and analytically known perturbations."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from iggt.errors import InputError
from iggt.eval.cameras import camera_metrics, metrics_from_errors, pose_auc, relative_pose_errors
from iggt.eval.depth import align_depth, depth_metrics


def random_depth(seed: int = 0, shape=(3, 8, 10)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 5.0, size=shape)


def test_perfect_depth_gives_perfect_scores():
    gt = random_depth()
    for alignment in ("median", "scale_shift", "none"):
        result = depth_metrics(gt.copy(), gt, alignment=alignment)
        assert result["abs_rel"] == pytest.approx(0.0, abs=1e-12)
        assert result["delta_1.25"] == 1.0
        assert result["tau_1.03"] == 1.0


def test_per_map_scale_is_removed_by_median_alignment():
    gt = random_depth(1)
    pred = gt * np.array([0.1, 3.0, 42.0])[:, None, None]  # a different scale in every map
    result = depth_metrics(pred, gt, alignment="median")
    assert result["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert result["tau_1.03"] == 1.0
    assert depth_metrics(pred, gt, alignment="none")["tau_1.03"] == 0.0


def test_scale_and_shift_is_removed_by_least_squares():
    gt = random_depth(2)
    aligned = align_depth(2.0 * gt[0] - 0.3, gt[0], np.ones_like(gt[0], dtype=bool), "scale_shift")
    np.testing.assert_allclose(aligned, gt[0], atol=1e-12)


def test_known_relative_error_and_thresholds():
    gt = np.ones((1, 2, 2))
    pred = np.array([[[1.0, 1.0], [1.0, 1.1]]])  # one pixel 10 % off, median 1 so no rescaling
    result = depth_metrics(pred, gt, alignment="median")
    assert result["abs_rel"] == pytest.approx(0.1 / 4)
    assert result["delta_1.25"] == 1.0
    assert result["tau_1.03"] == pytest.approx(0.75)


def test_invalid_ground_truth_is_ignored_and_empty_maps_skipped():
    gt = random_depth(3, (2, 4, 4))
    pred = gt.copy()
    gt[0, 0, 0], pred[0, 0, 0] = 0.0, 100.0  # invalid GT pixel with a wild prediction
    gt[1] = 0.0  # a map without valid pixels
    result = depth_metrics(pred, gt, alignment="none")
    assert result["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="unknown depth alignment"):
        depth_metrics(pred, gt, alignment="mean")


def random_extrinsics(num_views: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rotation = Rotation.random(num_views, random_state=rng).as_matrix()
    return np.concatenate([rotation, rng.normal(size=(num_views, 3, 1))], axis=2)


def test_perfect_cameras_give_perfect_scores():
    gt = random_extrinsics(6, 0)
    result = camera_metrics(gt.copy(), gt)
    assert all(value == 1.0 for value in result.values()), result


def test_cameras_are_invariant_to_a_world_similarity():
    gt = random_extrinsics(5, 1)
    rotation = Rotation.random(random_state=2).as_matrix()
    scale, translation = 3.7, np.array([1.0, -2.0, 0.5])
    # World change x' = s R x + T: camera-from-world' has rotation R_i R^T, translation s t_i - R_i R^T T.
    pred = np.concatenate(
        [
            gt[:, :, :3] @ rotation.T,
            (scale * gt[:, :, 3] - gt[:, :, :3] @ rotation.T @ translation)[..., None],
        ],
        axis=2,
    )
    rotation_error, translation_error = relative_pose_errors(pred, gt)
    np.testing.assert_allclose(rotation_error, 0.0, atol=1e-5)
    np.testing.assert_allclose(translation_error, 0.0, atol=1e-5)


@pytest.mark.parametrize("num_views", [3, 5, 8])
def test_ten_degree_rotation_error_on_one_camera_shows_in_rra_at_5_degrees(num_views):
    gt = random_extrinsics(num_views, num_views)
    pred = gt.copy()
    delta = Rotation.from_rotvec(np.radians(10.0) * np.array([0.0, 0.6, 0.8])).as_matrix()
    pred[2, :, :3] = delta @ gt[2, :, :3]  # camera 2 turned 10 degrees about its own centre
    pred[2, :, 3] = delta @ gt[2, :, 3]
    rotation_error, _ = relative_pose_errors(pred, gt)
    num_pairs = num_views * (num_views - 1) // 2
    assert np.isclose(rotation_error, 10.0, atol=1e-9).sum() == num_views - 1
    result = camera_metrics(pred, gt)
    assert result["rra@5"] == pytest.approx(1 - (num_views - 1) / num_pairs)  # = 1 - 2 / S
    assert result["rra@15"] == 1.0


def test_auc_matches_hand_computed_value():
    rotation_error = np.array([0.5, 2.5, 40.0])
    translation_error = np.array([0.0, 10.5, 1.0])
    # worst errors 0.5, 10.5, 40: below t for t >= 1, t >= 11, never -> (30 + 20 + 0) / (3 * 30)
    assert pose_auc(rotation_error, translation_error) == pytest.approx(50 / 90)


def test_metrics_from_errors_counts_translations_unless_there_are_none():
    rotation_error = np.array([0.5, 2.5, 40.0])
    translation_error = np.array([0.0, 10.5, 1.0])
    both = metrics_from_errors(rotation_error, translation_error, (5.0, 15.0))
    assert both == pytest.approx({"rra@5": 2 / 3, "rta@5": 2 / 3, "rra@15": 2 / 3, "rta@15": 1.0, "auc@30": 50 / 90})
    # Without a baseline only rotations count: worst errors 0.5, 2.5, 40 -> (30 + 28 + 0) / 90.
    rotation_only = metrics_from_errors(rotation_error, None, (5.0, 15.0))
    assert rotation_only == pytest.approx({"rra@5": 2 / 3, "rra@15": 2 / 3, "auc@30": 58 / 90})


def test_translation_sign_ambiguity():
    gt = random_extrinsics(2, 5)
    pred = gt.copy()
    # Mirror camera 1's centre through camera 0's: the relative translation flips sign.
    centre_0 = -gt[0, :, :3].T @ gt[0, :, 3]
    centre_1 = -gt[1, :, :3].T @ gt[1, :, 3]
    pred[1, :, 3] = -gt[1, :, :3] @ (2 * centre_0 - centre_1)
    _, ambiguous = relative_pose_errors(pred, gt, sign_ambiguity=True)
    _, strict = relative_pose_errors(pred, gt, sign_ambiguity=False)
    assert ambiguous[0] == pytest.approx(0.0, abs=1e-6)
    assert strict[0] == pytest.approx(180.0, abs=1e-6)
