"""Open-vocabulary semantic metrics: mIoU and mAcc over a label set, in 2D and on 3D points.

Protocol (mmsegmentation's conventions, stated here so the numbers are reproducible):

- Only pixels / points whose ground-truth class is in ``label_set`` are evaluated; everything else
  (class 0 = unlabelled, classes outside the evaluated vocabulary) is ignored. A prediction outside
  the label set (e.g. 0 = "no prediction") on an evaluated pixel is simply wrong.
- Per class c: IoU(c) = TP / (TP + FP + FN), Acc(c) = TP / (TP + FN) (recall), counted over all
  evaluated pixels of the scene at once (not per view).
- mIoU = mean IoU over the classes with TP + FP + FN > 0; mAcc = mean Acc over the classes present
  in the ground truth. Classes that appear nowhere do not count.
- 3D: predicted labelled points (already aligned to the ground truth, e.g. with
  :func:`iggt.eval.alignment.umeyama`) and ground-truth points are voxelised (one majority label
  per occupied voxel, at the voxel's mean position); every ground-truth voxel takes the label of
  the nearest predicted voxel (``scipy.spatial.cKDTree``), or 0 beyond ``max_distance``.

Fractions in [0, 1]. Float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from iggt.errors import InputError


def confusion_matrix(pred_labels: np.ndarray, gt_labels: np.ndarray, label_set: Sequence[int]) -> np.ndarray:
    """(C, C + 1) int64 counts: row = GT class index in ``label_set``, column = predicted index,
    the last column counting predictions outside the label set. Pixels with GT outside it are dropped.
    """
    if pred_labels.shape != gt_labels.shape:
        raise InputError(f"label maps must have equal shapes; got {pred_labels.shape} and {gt_labels.shape}")
    labels = np.asarray(label_set)
    if labels.ndim != 1 or len(labels) == 0 or len(np.unique(labels)) != len(labels):
        raise InputError(f"label_set must be a non-empty list of distinct class IDs; got {list(label_set)}")
    order = np.argsort(labels)

    def index_of(values: np.ndarray) -> np.ndarray:
        position = np.clip(np.searchsorted(labels[order], values), 0, len(labels) - 1)
        found = labels[order][position] == values
        return np.where(found, order[position], len(labels))

    gt_index, pred_index = index_of(gt_labels.ravel()), index_of(pred_labels.ravel())
    keep = gt_index < len(labels)
    size = len(labels) * (len(labels) + 1)
    flat = gt_index[keep] * (len(labels) + 1) + pred_index[keep]
    return np.bincount(flat, minlength=size).reshape(len(labels), len(labels) + 1)


def scores_from_confusion(confusion: np.ndarray) -> dict[str, float]:
    """{"miou", "macc"} from a :func:`confusion_matrix` (NaN when no class qualifies)."""
    true_positive = np.diag(confusion[:, :-1]).astype(np.float64)
    gt_count = confusion.sum(1).astype(np.float64)
    pred_count = confusion[:, :-1].sum(0).astype(np.float64)
    union = gt_count + pred_count - true_positive
    iou = true_positive[union > 0] / union[union > 0]
    accuracy = true_positive[gt_count > 0] / gt_count[gt_count > 0]
    return {
        "miou": float(iou.mean()) if iou.size else float("nan"),
        "macc": float(accuracy.mean()) if accuracy.size else float("nan"),
    }


def semantic_metrics(pred_labels: np.ndarray, gt_labels: np.ndarray, label_set: Sequence[int]) -> dict[str, float]:
    """mIoU and mAcc of predicted class labels against ground truth of the same shape (2D: (S, H, W))."""
    return scores_from_confusion(confusion_matrix(pred_labels, gt_labels, label_set))


def voxelise_labels(points: np.ndarray, labels: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """One majority label per occupied voxel.

    Args:
        points: (N, 3) positions; labels: (N,) integer labels; voxel_size: edge length (> 0).

    Returns:
        centres: (V, 3) float64 mean position of each voxel's points; voxel_labels: (V,) the most
        frequent label in each voxel (ties to the smaller label).
    """
    if voxel_size <= 0:
        raise InputError(f"voxel_size must be > 0; got {voxel_size}")
    if points.ndim != 2 or points.shape[1] != 3 or labels.shape != points.shape[:1]:
        raise InputError(f"need (N, 3) points and (N,) labels; got {points.shape} and {labels.shape}")
    keys = np.floor(points.astype(np.float64) / voxel_size).astype(np.int64)
    _, voxel, occupancy = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    voxel = voxel.ravel()
    centres = np.zeros((len(occupancy), 3))
    np.add.at(centres, voxel, points.astype(np.float64))
    centres /= occupancy[:, None]
    label_values, label_index = np.unique(labels, return_inverse=True)
    votes = np.zeros((len(occupancy), len(label_values)), dtype=np.int64)
    np.add.at(votes, (voxel, label_index.ravel()), 1)
    return centres, label_values[votes.argmax(1)]


def transfer_labels(
    source_points: np.ndarray,
    source_labels: np.ndarray,
    target_points: np.ndarray,
    max_distance: float | None = None,
) -> np.ndarray:
    """(M,) label of the nearest of the (N, 3) source points for each (M, 3) target point (0 if farther
    than ``max_distance``)."""
    distance, index = cKDTree(source_points.astype(np.float64)).query(target_points.astype(np.float64))
    labels = source_labels[index]
    return labels if max_distance is None else np.where(distance <= max_distance, labels, 0)


def semantic_metrics_3d(
    pred_points: np.ndarray,
    pred_labels: np.ndarray,
    gt_points: np.ndarray,
    gt_labels: np.ndarray,
    label_set: Sequence[int],
    voxel_size: float = 0.05,
    max_distance: float | None = None,
) -> dict[str, float]:
    """3D mIoU and mAcc on voxelised ground-truth points (see the module docstring).

    Args:
        pred_points: (N, 3) predicted points aligned to the ground truth; pred_labels: (N,) classes.
        gt_points: (M, 3) ground-truth points; gt_labels: (M,) classes.
        label_set: evaluated class IDs.
        voxel_size: voxel edge in ground-truth units (default 5 cm for metric scenes).
        max_distance: predicted labels farther than this from a ground-truth voxel do not transfer.
    """
    if len(pred_points) == 0:
        raise InputError("semantic_metrics_3d needs at least one predicted point; got none")
    pred_centres, pred_voxel_labels = voxelise_labels(pred_points, pred_labels, voxel_size)
    gt_centres, gt_voxel_labels = voxelise_labels(gt_points, gt_labels, voxel_size)
    transferred = transfer_labels(pred_centres, pred_voxel_labels, gt_centres, max_distance)
    return semantic_metrics(transferred, gt_voxel_labels, label_set)
