"""Multi-view instance metrics: T-mIoU, T-SR and cross-view ID consistency.

Protocol (the paper's temporal metrics, section 7 of the reference notes, made precise):

1. Pixels whose ground-truth ID is 0 (unlabelled) are ignored: they belong to no ground-truth
   mask and are removed from every predicted mask, so predictions there are neither right nor wrong.
2. Predicted IDs are matched to ground-truth IDs ONCE for the whole sequence, one to one, by the
   Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) maximising the sum over all
   views of the per-view IoU. A ground-truth object is matched only if its summed IoU is > 0.
   Predicted ID 0 (no instance) is never matched.
3. For a ground-truth object o, "its views" are the views where o has at least one pixel.
   T-mIoU(o) = mean over its views of IoU(mask of the prediction matched to o, GT mask of o).
   Views where o is absent are skipped (``absent_views="skip"``, default); with
   ``absent_views="penalise"`` a view where o is absent but its matched prediction is not counts
   as IoU 0 (a false positive), and views where both are absent are still skipped.
4. T-SR(o) = 1 if the matched prediction is non-empty in every one of o's views, else 0.
5. An unmatched ground-truth object scores T-mIoU 0 and T-SR 0.
6. T-mIoU and T-SR are the means over the ground-truth objects of the scene (fractions; the paper
   prints them x100).

ID consistency (ours, not in the paper): in each of o's views take the predicted ID covering most
of o's pixels (ID 0 included, ties to the smaller ID); o is consistent when that ID is the same
non-zero ID in all of its views and is not the majority ID of any other object in any view (so
one ID painted over everything scores 0, not 1). The score is the fraction of consistent objects.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from iggt.errors import InputError

AbsentViews = Literal["skip", "penalise"]


def _overlap_counts(pred_ids: np.ndarray, gt_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-view pixel counts of every (GT, prediction) label pair, GT-unlabelled pixels dropped.

    Returns:
        gt_labels: (G,) the non-zero GT IDs; pred_labels: (P,) the non-zero predicted IDs (on
        labelled pixels); counts: (S, G + 1, P + 1) int64 where index 0 on either axis is "ID 0".
    """
    labelled = gt_ids != 0
    gt_labels = np.unique(gt_ids[labelled])
    pred_labels = np.unique(pred_ids[labelled & (pred_ids != 0)])
    num_views = gt_ids.shape[0]
    view = np.broadcast_to(np.arange(num_views)[:, None, None], gt_ids.shape)[labelled]
    # searchsorted gives row 1..G for GT labels; predicted 0 (or absent) maps to column 0.
    gt_row = np.searchsorted(gt_labels, gt_ids[labelled]) + 1
    pred_flat = pred_ids[labelled]
    pred_column = np.searchsorted(pred_labels, pred_flat) + 1
    pred_column = np.where(pred_flat == 0, 0, pred_column)
    shape = (num_views, len(gt_labels) + 1, len(pred_labels) + 1)
    flat = np.ravel_multi_index((view, gt_row, pred_column), shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    return gt_labels, pred_labels, counts


def _per_view_iou(counts: np.ndarray) -> np.ndarray:
    """(S, G, P) IoU of every non-zero GT and predicted label in every view (0 where both are empty)."""
    intersection = counts[:, 1:, 1:].astype(np.float64)
    gt_area = counts[:, 1:, :].sum(2, keepdims=True)
    pred_area = counts[:, 1:, 1:].sum(1, keepdims=True)  # predicted pixels on labelled GT only
    union = gt_area + pred_area - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def match_instances(pred_ids: np.ndarray, gt_ids: np.ndarray) -> dict[int, int]:
    """One-to-one GT -> predicted ID matching for the whole sequence (Hungarian on summed IoU).

    Args:
        pred_ids: (S, H, W) predicted instance IDs, 0 = none.
        gt_ids: (S, H, W) ground-truth instance IDs, 0 = unlabelled (ignored).

    Returns:
        {gt_id: pred_id} for the matched ground-truth objects (summed IoU > 0).
    """
    _check_id_maps(pred_ids, gt_ids)
    gt_labels, pred_labels, counts = _overlap_counts(pred_ids, gt_ids)
    return _hungarian(gt_labels, pred_labels, _per_view_iou(counts).sum(0))


def _hungarian(gt_labels: np.ndarray, pred_labels: np.ndarray, summed_iou: np.ndarray) -> dict[int, int]:
    """{gt_id: pred_id} maximising the total of the (G, P) summed IoU, pairs with 0 left out."""
    if summed_iou.size == 0:
        return {}
    rows, columns = linear_sum_assignment(summed_iou, maximize=True)
    pairs = zip(rows, columns, strict=True)
    return {int(gt_labels[r]): int(pred_labels[c]) for r, c in pairs if summed_iou[r, c] > 0}


def _check_id_maps(pred_ids: np.ndarray, gt_ids: np.ndarray) -> None:
    if pred_ids.shape != gt_ids.shape or gt_ids.ndim != 3:
        raise InputError(f"instance ID maps must both be (S, H, W); got {pred_ids.shape} and {gt_ids.shape}")


def instance_metrics(pred_ids: np.ndarray, gt_ids: np.ndarray, absent_views: AbsentViews = "skip") -> dict[str, float]:
    """T-mIoU, T-SR and ID consistency of one sequence (see the module docstring).

    Args:
        pred_ids: (S, H, W) predicted instance IDs, 0 = none.
        gt_ids: (S, H, W) ground-truth instance IDs consistent across views, 0 = unlabelled.
        absent_views: "skip" or "penalise" the views where the GT object is absent.

    Returns:
        {"t_miou", "t_sr", "id_consistency", "num_objects", "num_matched"}; the three scores are NaN
        when the ground truth has no object.
    """
    if absent_views not in ("skip", "penalise"):
        raise InputError(f"unknown absent_views {absent_views!r}; use 'skip' or 'penalise'")
    _check_id_maps(pred_ids, gt_ids)
    gt_labels, pred_labels, counts = _overlap_counts(pred_ids, gt_ids)
    iou = _per_view_iou(counts)
    matching = _hungarian(gt_labels, pred_labels, iou.sum(0))
    gt_visible = counts[:, 1:, :].sum(2) > 0  # (S, G)
    t_miou, t_sr = np.zeros(len(gt_labels)), np.zeros(len(gt_labels))
    for row, gt_id in enumerate(gt_labels):
        if int(gt_id) not in matching:
            continue
        column = int(np.searchsorted(pred_labels, matching[int(gt_id)]))
        pred_visible = counts[:, 1:, column + 1].sum(1) > 0
        views = gt_visible[:, row] | (pred_visible & (absent_views == "penalise"))
        t_miou[row] = iou[views, row, column].mean()
        t_sr[row] = float(pred_visible[gt_visible[:, row]].all())
    consistency = _id_consistency(counts)
    return {
        "t_miou": _mean_or_nan(t_miou),
        "t_sr": _mean_or_nan(t_sr),
        "id_consistency": _mean_or_nan(consistency),
        "num_objects": float(len(gt_labels)),
        "num_matched": float(len(matching)),
    }


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _id_consistency(counts: np.ndarray) -> np.ndarray:
    """(G,) 1.0 where a GT object's per-view majority predicted ID is one non-zero ID in all its views
    and is no other object's majority ID in any view."""
    per_object = counts[:, 1:, :]  # (S, G, P + 1), column 0 = predicted ID 0
    majority = per_object.argmax(2)  # argmax takes the first maximum: ties go to the smaller ID
    visible = per_object.sum(2) > 0
    majorities = [set(majority[visible[:, row], row].tolist()) for row in range(per_object.shape[1])]
    owners = Counter(column for columns in majorities for column in columns)  # objects per majority ID
    return np.array(
        [len(columns) == 1 and 0 not in columns and owners[next(iter(columns))] == 1 for columns in majorities],
        dtype=np.float64,
    )
