"""Similarity transforms (Sim(3)): the least-squares fit (Umeyama), a robust fit, and their action
on cameras and depth.

``x -> scale * rotation @ x + translation`` maps points of one frame (e.g. a window of a long
capture, or a prediction) into another (the capture's world, or the ground truth). The
least-squares fit is Umeyama 1991, "Least-squares estimation of transformation parameters between
two point patterns". Float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iggt.errors import InputError


@dataclass(frozen=True)
class Similarity:
    """x -> scale * rotation @ x + translation.

    Attributes:
        scale: positive scalar.
        rotation: (3, 3) float64 proper rotation (det = +1).
        translation: (3,) float64.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls) -> Similarity:
        return cls(1.0, np.eye(3), np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points -> (..., 3) float64 transformed points."""
        return self.scale * (points.astype(np.float64) @ self.rotation.T) + self.translation

    def apply_to_extrinsic(self, extrinsic: np.ndarray) -> np.ndarray:
        """(..., 3, 4) camera-from-world of the source frame -> (..., 3, 4) float64 camera-from-world
        of the target frame, camera units scaled by ``scale`` (so depth scales by ``scale`` too).

        With x' = s R x + T and x_cam = Rc x + tc: s x_cam = Rc R^T x' + (s tc - Rc R^T T).
        """
        camera_rotation = extrinsic[..., :3].astype(np.float64) @ self.rotation.T
        translation = self.scale * extrinsic[..., 3].astype(np.float64) - camera_rotation @ self.translation
        return np.concatenate([camera_rotation, translation[..., None]], axis=-1)


def check_correspondences(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Validate shapes and return (N,) float64 weights summing to 1."""
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3:
        raise InputError(f"alignment needs two (N, 3) arrays of equal shape; got {source.shape} and {target.shape}")
    if source.shape[0] < 3:
        raise InputError(f"alignment needs at least 3 corresponding points; got {source.shape[0]}")
    w = np.ones(source.shape[0]) if weights is None else weights.astype(np.float64)
    if w.shape != (source.shape[0],) or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"alignment weights must be (N,) = ({source.shape[0]},), non-negative, not all zero")
    return w / w.sum()


def umeyama(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None, with_scale: bool = True
) -> Similarity:
    """Least-squares similarity (or rigid transform) mapping ``source`` onto ``target``.

    Args:
        source: (N, 3) points to be moved (the prediction), N >= 3, not all collinear.
        target: (N, 3) corresponding points (the ground truth).
        weights: optional (N,) non-negative weights of the correspondences.
        with_scale: False fits SE(3) (scale fixed to 1).

    Returns:
        The :class:`Similarity` minimising sum_i w_i |target_i - (s R source_i + t)|^2.
    """
    w = check_correspondences(source, target, weights)
    src, tgt = source.astype(np.float64), target.astype(np.float64)
    src_mean, tgt_mean = w @ src, w @ tgt
    src_c, tgt_c = src - src_mean, tgt - tgt_mean
    covariance = (tgt_c * w[:, None]).T @ src_c
    u, singular, vt = np.linalg.svd(covariance)
    # Flip the weakest axis when needed so the result is a rotation, not a reflection.
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rotation = (u * sign) @ vt
    variance = float(w @ (src_c**2).sum(1))
    scale = float((singular * sign).sum() / variance) if with_scale else 1.0
    translation = tgt_mean - scale * rotation @ src_mean
    return Similarity(scale, rotation, translation)


@dataclass(frozen=True)
class RobustFit:
    """The result of :func:`robust_umeyama`.

    Attributes:
        similarity: the fit on the inliers.
        inliers: (N,) bool correspondences kept in the last round.
        residual_scale: the inlier threshold of the last round, in target units.
    """

    similarity: Similarity
    inliers: np.ndarray
    residual_scale: float


def robust_umeyama(
    source: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None = None,
    rounds: int = 5,
    cutoff: float = 3.0,
) -> RobustFit:
    """Sim(3) fit with outliers rejected: weighted Umeyama, then ``rounds`` refits on the
    correspondences whose residual is at most ``cutoff`` times the 1.4826 x median residual
    (a robust standard deviation; a Gaussian keeps 99.7 % at 3).

    The threshold follows the residuals, so it needs no unit; it never drops below 1e-9 of the
    target's spread (exact correspondences keep all points). Fewer than 3 inliers keep the
    previous round.

    Args:
        source: (N, 3) points to move; target: (N, 3) their correspondences.
        weights: (N,) non-negative confidence of each correspondence, or None for equal weights.
        rounds: refits after the first fit.
        cutoff: inlier threshold in robust standard deviations.
    """
    w = check_correspondences(source, target, weights)
    inliers = w > 0
    fit = umeyama(source, target, w)
    floor = 1e-9 * float(np.sqrt(w @ ((target - w @ target) ** 2).sum(1)))
    threshold = np.inf
    for _ in range(rounds):
        residual = np.linalg.norm(fit.apply(source) - target, axis=1)
        threshold = max(cutoff * 1.4826 * float(np.median(residual[inliers])), floor)
        keep = (residual <= threshold) & (w > 0)
        if keep.sum() < 3 or np.array_equal(keep, inliers):
            break
        inliers = keep
        fit = umeyama(source[inliers], target[inliers], w[inliers])
    return RobustFit(fit, inliers, threshold)
