"""T-mIoU / T-SR / ID consistency and open-vocabulary mIoU / mAcc on hand-built label maps."""

import numpy as np
import pytest

from iggt.errors import InputError
from iggt.eval.instances import instance_metrics, match_instances
from iggt.eval.open_vocab import semantic_metrics, semantic_metrics_3d, voxelise_labels

NUM_VIEWS, HEIGHT, WIDTH = 4, 12, 16


def block_scene() -> np.ndarray:
    """(S, H, W) GT with objects 1..4 as blocks whose sizes change per view; object 4 misses view 3."""
    ids = np.zeros((NUM_VIEWS, HEIGHT, WIDTH), dtype=np.int32)
    for view in range(NUM_VIEWS):
        ids[view, 0:6, 0 : 4 + view] = 1
        ids[view, 0:6, 8:16] = 2
        ids[view, 6:12, 0:8] = 3
        if view < 3:
            ids[view, 6:12, 8 : 10 + view] = 4
    return ids


def relabel(ids: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    out = ids.copy()
    for old, new in mapping.items():
        out[ids == old] = new
    return out


def test_perfect_prediction_with_other_ids_scores_perfectly():
    gt = block_scene()
    pred = relabel(gt, {1: 17, 2: 5, 3: 9, 4: 2})  # arbitrary but consistent predicted IDs
    assert match_instances(pred, gt) == {1: 17, 2: 5, 3: 9, 4: 2}
    result = instance_metrics(pred, gt)
    assert result["t_miou"] == 1.0
    assert result["t_sr"] == 1.0
    assert result["id_consistency"] == 1.0
    assert result["num_objects"] == 4 and result["num_matched"] == 4


def test_swapping_two_ids_in_one_frame_lowers_t_miou_by_the_computed_amount():
    gt = block_scene()
    pred = gt.copy()
    pred[1] = relabel(gt[1], {2: 3, 3: 2})  # objects 2 and 3 swapped in view 1 only
    result = instance_metrics(pred, gt)
    # Matched once for the sequence (2->2, 3->3): each of them has IoU 0 in 1 of its 4 views.
    num_objects = 4
    expected_drop = 2 * (1 / NUM_VIEWS) / num_objects
    assert result["t_miou"] == pytest.approx(1.0 - expected_drop)
    assert result["t_sr"] == 1.0  # both predictions are still non-empty in every view
    assert result["id_consistency"] == pytest.approx((num_objects - 2) / num_objects)


def test_splitting_an_instance_in_half_lowers_t_miou_as_computed():
    gt = block_scene()
    pred = gt.copy()
    bottom_half = (gt == 1) & (np.arange(HEIGHT)[None, :, None] >= 3)  # rows 3..5 of object 1's rows 0..5
    pred[bottom_half] = 99  # half of object 1's pixels get a new ID in every view
    result = instance_metrics(pred, gt)
    # Either half matches object 1 with IoU 1/2 in every view; the other half stays unmatched.
    assert result["t_miou"] == pytest.approx((0.5 + 3) / 4)
    assert result["t_sr"] == 1.0


def test_uneven_split_matches_the_larger_part_over_the_sequence():
    gt = block_scene()
    pred = gt.copy()
    right_part = (gt == 1) & (np.arange(WIDTH)[None, None, :] >= 2)  # object 1 is 4 + view columns wide
    pred[right_part] = 99
    # Per view the right part covers (2 + v) / (4 + v) of object 1 >= the left part's 2 / (4 + v).
    assert match_instances(pred, gt)[1] == 99
    expected = (np.mean([(2 + v) / (4 + v) for v in range(NUM_VIEWS)]) + 3) / 4
    assert instance_metrics(pred, gt)["t_miou"] == pytest.approx(expected)


def test_missing_prediction_in_one_view_fails_t_sr_and_absent_views_are_skipped():
    gt = block_scene()
    pred = gt.copy()
    pred[0][gt[0] == 1] = 0  # object 1 not segmented in view 0
    result = instance_metrics(pred, gt)
    assert result["t_sr"] == pytest.approx(3 / 4)
    assert result["t_miou"] == pytest.approx((3 / 4 + 3) / 4)
    # Object 4 is absent in view 3 in GT and prediction: with "skip" it averages over its 3 views.
    assert instance_metrics(gt, gt, absent_views="penalise")["t_miou"] == 1.0


def test_false_positive_view_is_penalised_only_on_request():
    gt = block_scene()
    pred = gt.copy()
    pred[3, 0:2, 8:10] = 4  # object 4 predicted on object 2's pixels in view 3, where 4 is absent
    skip = instance_metrics(pred, gt, absent_views="skip")
    penalise = instance_metrics(pred, gt, absent_views="penalise")
    iou_2_view_3 = (6 * 8 - 4) / (6 * 8)
    assert skip["t_miou"] == pytest.approx((1 + (3 + iou_2_view_3) / 4 + 1 + 1) / 4)
    # Object 4 gains a fourth view with IoU 0: T-mIoU(4) = 3 / 4.
    assert penalise["t_miou"] == pytest.approx((1 + (3 + iou_2_view_3) / 4 + 1 + 3 / 4) / 4)


def test_unlabelled_gt_pixels_are_ignored_and_unmatched_objects_score_zero():
    gt = block_scene()
    pred = gt.copy()
    pred[gt == 0] = 1  # predictions spilling into unlabelled pixels do not count
    pred[gt == 3] = 0  # object 3 never predicted
    result = instance_metrics(pred, gt)
    assert result["num_matched"] == 3
    assert result["t_miou"] == pytest.approx(3 / 4)
    assert result["t_sr"] == pytest.approx(3 / 4)
    with pytest.raises(InputError, match="absent_views"):
        instance_metrics(pred, gt, absent_views="ignore")
    assert np.isnan(instance_metrics(pred, np.zeros_like(gt))["t_miou"])


def test_semantic_metrics_perfect_and_known_values():
    gt = np.array([[1, 1, 2, 2, 0, 7]])
    assert semantic_metrics(gt.copy(), gt, [1, 2]) == {"miou": 1.0, "macc": 1.0}
    pred = np.array([[1, 2, 2, 2, 1, 1]])  # 0 and 7 are outside the label set: ignored
    # class 1: TP 1, FN 1, FP 0 -> IoU 1/2, Acc 1/2; class 2: TP 2, FP 1 -> IoU 2/3, Acc 1
    result = semantic_metrics(pred, gt, [1, 2])
    assert result["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result["macc"] == pytest.approx((1 / 2 + 1) / 2)
    # A prediction outside the label set is wrong; a class only predicted counts in mIoU, not mAcc.
    result = semantic_metrics(np.array([5, 3]), np.array([1, 1]), [1, 3])
    assert result == {"miou": 0.0, "macc": 0.0}


def test_voxelise_and_3d_metrics():
    points = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.03, 0.01, 0.02], [1.0, 1.0, 1.0]])
    labels = np.array([2, 1, 2, 3])
    centres, voxel_labels = voxelise_labels(points, labels, 0.1)
    assert sorted(voxel_labels.tolist()) == [2, 3]
    np.testing.assert_allclose(centres[voxel_labels == 2][0], points[:3].mean(0))
    rng = np.random.default_rng(0)
    gt_points = rng.uniform(0, 1, size=(500, 3))
    gt_labels = np.where(gt_points[:, 0] < 0.5, 1, 2)
    perfect = semantic_metrics_3d(gt_points, gt_labels, gt_points, gt_labels, [1, 2], voxel_size=0.05)
    assert perfect["miou"] == pytest.approx(1.0) and perfect["macc"] == pytest.approx(1.0)
    swapped = semantic_metrics_3d(gt_points, 3 - gt_labels, gt_points, gt_labels, [1, 2], voxel_size=0.05)
    assert swapped == {"miou": 0.0, "macc": 0.0}


def test_one_id_everywhere_is_not_consistent():
    gt = block_scene()
    everything = np.where(gt > 0, 7, 0)
    result = instance_metrics(everything, gt)
    assert result["id_consistency"] == 0.0  # every object's majority ID is shared with the others
    assert result["num_matched"] == 1
