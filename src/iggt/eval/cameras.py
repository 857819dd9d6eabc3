"""Camera-pose metrics over all frame pairs: RRA, RTA and AUC@30 (the VGGT / CO3D protocol).

For every pair of views i < j the relative pose "camera j from camera i" is
``R_ij = R_j R_i^T``, ``t_ij = t_j - R_ij t_i`` (extrinsics are camera-from-world), for the
prediction and the ground truth. Relative poses do not depend on the world frame, and translation
directions not on the scale, so no alignment is needed.

- rotation error    = geodesic angle of ``R_ij_pred^T R_ij_gt`` (degrees),
- translation error = angle between ``t_ij_pred`` and ``t_ij_gt`` (degrees); with
  ``sign_ambiguity`` (VGGT's default) it is min(e, 180 - e); a pair whose two cameras share a
  centre in both prediction and ground truth has error 0, in only one of them 90,
- ``rra@k`` / ``rta@k`` = fraction of pairs with rotation / translation error < k degrees,
- ``auc@30`` = mean over thresholds t = 1, 2, ..., 30 of the fraction of pairs with
  max(rotation error, translation error) < t.

Fractions in [0, 1]. Float64.
"""

from __future__ import annotations

import numpy as np

from iggt.errors import InputError

DEFAULT_THRESHOLDS = (5.0, 15.0, 30.0)


def relative_poses(extrinsic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative poses of all pairs i < j (in ``np.triu_indices(S, 1)`` order).

    Args:
        extrinsic: (S, 3, 4) camera-from-world.

    Returns:
        rotation: (P, 3, 3) camera-j-from-camera-i rotations; translation: (P, 3); P = S (S - 1) / 2.
    """
    e = extrinsic.astype(np.float64)
    first, second = np.triu_indices(len(e), 1)
    rotation = e[second, :, :3] @ e[first, :, :3].transpose(0, 2, 1)
    translation = e[second, :, 3] - (rotation @ e[first, :, 3, None])[..., 0]
    return rotation, translation


def _rotation_angle_degrees(rotation_a: np.ndarray, rotation_b: np.ndarray) -> np.ndarray:
    """(P,) geodesic angle between (P, 3, 3) rotations, degrees."""
    trace = np.einsum("pij,pij->p", rotation_a, rotation_b)  # trace(A^T B)
    return np.degrees(np.arccos(np.clip((trace - 1) / 2, -1.0, 1.0)))


def _direction_angle_degrees(vector_a: np.ndarray, vector_b: np.ndarray, sign_ambiguity: bool) -> np.ndarray:
    """(P,) angle between (P, 3) directions, degrees; see the module docstring for zero vectors."""
    norm_a, norm_b = np.linalg.norm(vector_a, axis=1), np.linalg.norm(vector_b, axis=1)
    # Relative tolerance: a camera pair is "at the same centre" at 1e-12 of the scene's extent.
    scale = max(norm_a.max(initial=0.0), norm_b.max(initial=0.0), 1e-300)
    zero_a, zero_b = norm_a <= 1e-12 * scale, norm_b <= 1e-12 * scale
    cosine = (vector_a * vector_b).sum(1) / np.maximum(norm_a * norm_b, 1e-300)
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    angle = np.where(zero_a | zero_b, 90.0, angle)
    angle = np.where(zero_a & zero_b, 0.0, angle)
    return np.minimum(angle, 180.0 - angle) if sign_ambiguity else angle


def relative_pose_errors(
    pred_extrinsic: np.ndarray, gt_extrinsic: np.ndarray, sign_ambiguity: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation-direction errors of every frame pair.

    Args:
        pred_extrinsic: (S, 3, 4) predicted camera-from-world.
        gt_extrinsic: (S, 3, 4) ground-truth camera-from-world, S >= 2.
        sign_ambiguity: treat opposite translation directions as equal (VGGT's evaluation does).

    Returns:
        rotation_error, translation_error: (P,) degrees for the pairs i < j, P = S (S - 1) / 2.
    """
    if pred_extrinsic.shape != gt_extrinsic.shape or gt_extrinsic.shape[1:] != (3, 4):
        raise InputError(f"extrinsics must both be (S, 3, 4); got {pred_extrinsic.shape} and {gt_extrinsic.shape}")
    if len(gt_extrinsic) < 2:
        raise InputError(f"camera metrics need at least 2 views; got {len(gt_extrinsic)}")
    pred_rotation, pred_translation = relative_poses(pred_extrinsic)
    gt_rotation, gt_translation = relative_poses(gt_extrinsic)
    rotation_error = _rotation_angle_degrees(pred_rotation, gt_rotation)
    translation_error = _direction_angle_degrees(pred_translation, gt_translation, sign_ambiguity)
    return rotation_error, translation_error


def pose_auc(rotation_error: np.ndarray, translation_error: np.ndarray, max_threshold: int = 30) -> float:
    """Mean over t = 1..max_threshold of the fraction of pairs with max(rot, trans error) < t degrees."""
    worst = np.maximum(rotation_error, translation_error)
    thresholds = np.arange(1, max_threshold + 1, dtype=np.float64)
    return float(np.mean(worst[None, :] < thresholds[:, None]))


def camera_metrics(
    pred_extrinsic: np.ndarray,
    gt_extrinsic: np.ndarray,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    sign_ambiguity: bool = True,
) -> dict[str, float]:
    """RRA@k and RTA@k for each threshold k (degrees) and AUC@30 over all frame pairs.

    Args:
        pred_extrinsic: (S, 3, 4) predicted camera-from-world.
        gt_extrinsic: (S, 3, 4) ground-truth camera-from-world.
        thresholds: angles k in degrees.
        sign_ambiguity: see :func:`relative_pose_errors`.

    Returns:
        {"rra@5", "rta@5", "rra@15", ..., "auc@30"} (keys use the threshold printed with ``:g``).
    """
    rotation_error, translation_error = relative_pose_errors(pred_extrinsic, gt_extrinsic, sign_ambiguity)
    return metrics_from_errors(rotation_error, translation_error, thresholds)


def metrics_from_errors(
    rotation_error: np.ndarray,
    translation_error: np.ndarray | None,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
) -> dict[str, float]:
    """(P,) rotation and (P,) translation errors in degrees of any pooled set of pairs ->
    {"rra@k", "rta@k" for each k, "auc@30"}. With ``translation_error`` None (pairs without a
    baseline, whose direction is undefined) only rotations count: no "rta@k", and AUC@30 is over the
    rotation error alone."""
    result = {}
    for k in thresholds:
        result[f"rra@{k:g}"] = float(np.mean(rotation_error < k))
        if translation_error is not None:
            result[f"rta@{k:g}"] = float(np.mean(translation_error < k))
    counted = np.zeros_like(rotation_error) if translation_error is None else translation_error
    result["auc@30"] = pose_auc(rotation_error, counted, 30)
    return result
