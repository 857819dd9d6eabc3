"""Point-cloud metrics: accuracy, completeness, Chamfer distance and normal consistency.

Protocol (as DUSt3R / Spann3R / CUT3R evaluate reconstructions): the predicted point maps are first
aligned to the ground truth (Sim(3) by default, fitted by Umeyama on pixel correspondences, since
both point maps share the image grid); then, with nearest neighbours from ``scipy.spatial.cKDTree``,

- ``accuracy``     = mean distance from each predicted point to its nearest ground-truth point,
- ``completeness`` = mean distance from each ground-truth point to its nearest predicted point,
- ``chamfer``      = (accuracy + completeness) / 2,
- ``normal_consistency`` = mean |cos| between the normal of a point and that of its nearest
  neighbour, averaged over both directions. Normals come from the point maps' image-grid
  neighbours (cross product of the horizontal and vertical central differences); their sign is
  arbitrary, hence the absolute value.

Distances are in ground-truth units. Float64.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from iggt.errors import InputError
from iggt.eval.alignment import PointAlignment, align_points


def point_map_normals(points: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals of point maps from their image-grid neighbours.

    Args:
        points: (S, H, W, 3) point maps.
        valid: optional (S, H, W) bool valid points (default: all finite points).

    Returns:
        normals: (S, H, W, 3) float64 unit normals (zero where undefined);
        has_normal: (S, H, W) bool, True where the pixel and its four neighbours are valid and the
        cross product is non-degenerate (border pixels never have a normal).
    """
    p = points.astype(np.float64)
    ok = np.isfinite(p).all(-1) if valid is None else valid.astype(bool) & np.isfinite(p).all(-1)
    p = np.where(ok[..., None], p, 0.0)
    horizontal = np.zeros_like(p)
    vertical = np.zeros_like(p)
    horizontal[:, :, 1:-1] = p[:, :, 2:] - p[:, :, :-2]
    vertical[:, 1:-1] = p[:, 2:] - p[:, :-2]
    cross = np.cross(horizontal, vertical)
    norm = np.linalg.norm(cross, axis=-1)
    neighbours_ok = np.zeros_like(ok)
    neighbours_ok[:, 1:-1, 1:-1] = (
        ok[:, 1:-1, 1:-1] & ok[:, 1:-1, 2:] & ok[:, 1:-1, :-2] & ok[:, 2:, 1:-1] & ok[:, :-2, 1:-1]
    )
    has_normal = neighbours_ok & (norm > 1e-12)
    normals = np.where(has_normal[..., None], cross / np.maximum(norm, 1e-300)[..., None], 0.0)
    return normals, has_normal


def _mean_abs_cosine(normals: np.ndarray, partner_normals: np.ndarray) -> float:
    """Mean |n . m| over the (N, 3) row pairs where both rows are non-zero (NaN if none)."""
    both = (np.abs(normals).sum(-1) > 0) & (np.abs(partner_normals).sum(-1) > 0)
    if not both.any():
        return float("nan")
    return float(np.abs((normals[both] * partner_normals[both]).sum(-1)).mean())


def point_cloud_metrics(
    pred_points: np.ndarray,
    gt_points: np.ndarray,
    pred_normals: np.ndarray | None = None,
    gt_normals: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy, completeness, Chamfer (and normal consistency when both normals are given).

    Args:
        pred_points: (N, 3) predicted points, already aligned to the ground truth.
        gt_points: (M, 3) ground-truth points.
        pred_normals: optional (N, 3) unit normals of ``pred_points``; a zero row means "no normal".
        gt_normals: optional (M, 3) unit normals of ``gt_points``; a zero row means "no normal".

    Returns:
        {"accuracy", "completeness", "chamfer"} and, with normals, "normal_consistency": the mean
        over the nearest-neighbour pairs in which both points have a normal (NaN if there is none).
    """
    if pred_points.ndim != 2 or gt_points.ndim != 2 or pred_points.shape[1] != 3 or gt_points.shape[1] != 3:
        raise InputError(f"point clouds must be (N, 3); got {pred_points.shape} and {gt_points.shape}")
    if len(pred_points) == 0 or len(gt_points) == 0:
        raise InputError(f"point clouds must be non-empty; got {len(pred_points)} and {len(gt_points)} points")
    pred, gt = pred_points.astype(np.float64), gt_points.astype(np.float64)
    to_gt_distance, to_gt_index = cKDTree(gt).query(pred)
    to_pred_distance, to_pred_index = cKDTree(pred).query(gt)
    accuracy, completeness = float(to_gt_distance.mean()), float(to_pred_distance.mean())
    result = {"accuracy": accuracy, "completeness": completeness, "chamfer": (accuracy + completeness) / 2}
    if pred_normals is not None and gt_normals is not None:
        pred_side = _mean_abs_cosine(pred_normals, gt_normals[to_gt_index])
        gt_side = _mean_abs_cosine(gt_normals, pred_normals[to_pred_index])
        result["normal_consistency"] = (pred_side + gt_side) / 2
    return result


def point_map_metrics(
    pred_points: np.ndarray,
    gt_points: np.ndarray,
    valid: np.ndarray,
    alignment: PointAlignment = "sim3",
    max_points: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Align predicted point maps to ground-truth ones, then :func:`point_cloud_metrics`.

    Args:
        pred_points: (S, H, W, 3) predicted world points (any frame, any scale).
        gt_points: (S, H, W, 3) ground-truth world points on the same pixel grid.
        valid: (S, H, W) bool pixels with valid ground truth; only these enter the fit and the metrics.
        alignment: "sim3" (default), "se3", "scale" or "none" (see :mod:`iggt.eval.alignment`).
        max_points: if set, this many valid pixels drawn at random (``seed``) are evaluated; the
            alignment always uses all valid pixels.
        seed: seed of the subsample.

    Returns:
        {"accuracy", "completeness", "chamfer", "normal_consistency", "alignment_scale"}: the metrics
        over the valid pixels (normal consistency over those with a normal, see
        :func:`point_map_normals`), plus the scale of the fitted alignment.
    """
    if pred_points.shape != gt_points.shape or pred_points.ndim != 4 or valid.shape != pred_points.shape[:3]:
        raise InputError(
            f"point maps must be (S, H, W, 3) with a (S, H, W) mask; got {pred_points.shape}, "
            f"{gt_points.shape} and {valid.shape}"
        )
    valid = valid.astype(bool) & np.isfinite(pred_points).all(-1) & np.isfinite(gt_points).all(-1)
    transform = align_points(pred_points[valid], gt_points[valid], alignment)
    aligned = transform.apply(pred_points)
    pred_normals, _ = point_map_normals(aligned, valid)
    gt_normals, _ = point_map_normals(gt_points, valid)
    selected = np.flatnonzero(valid)
    if max_points is not None and len(selected) > max_points:
        selected = np.sort(np.random.default_rng(seed).choice(selected, max_points, replace=False))

    def pick(array: np.ndarray) -> np.ndarray:
        return array.reshape(-1, 3)[selected]

    result = point_cloud_metrics(pick(aligned), pick(gt_points), pick(pred_normals), pick(gt_normals))
    result["alignment_scale"] = transform.scale
    return result
