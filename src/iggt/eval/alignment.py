"""Aligning predicted 3D points to ground truth: Sim(3) (Umeyama), SE(3), or scale only.

A feed-forward reconstruction lives in the first camera's frame at an arbitrary scale; before
comparing it with ground truth we find the transform ``target ~ scale * rotation @ source + translation``
that minimises the (weighted) sum of squared distances over corresponding points (Umeyama 1991,
"Least-squares estimation of transformation parameters between two point patterns"). Float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from iggt.errors import InputError

PointAlignment = Literal["sim3", "se3", "scale", "none"]
POINT_ALIGNMENTS = ("sim3", "se3", "scale", "none")


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


def _check_correspondences(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
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
    w = _check_correspondences(source, target, weights)
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


def fit_scale(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Similarity:
    """Scale only, about the origin (the first camera): s = <w source, target> / <w source, source>.

    Use when the prediction is already in the ground truth's frame (e.g. both in the first camera's
    frame) and only the unknown global scale must be removed.
    """
    w = _check_correspondences(source, target, weights)
    src, tgt = source.astype(np.float64), target.astype(np.float64)
    scale = float((w * (src * tgt).sum(1)).sum() / (w * (src * src).sum(1)).sum())
    return Similarity(scale, np.eye(3), np.zeros(3))


def align_points(
    source: np.ndarray, target: np.ndarray, method: PointAlignment = "sim3", weights: np.ndarray | None = None
) -> Similarity:
    """Dispatch to the alignment named by ``method`` ("sim3", "se3", "scale" or "none")."""
    if method == "sim3":
        return umeyama(source, target, weights, with_scale=True)
    if method == "se3":
        return umeyama(source, target, weights, with_scale=False)
    if method == "scale":
        return fit_scale(source, target, weights)
    if method == "none":
        return Similarity.identity()
    raise InputError(f"unknown point alignment {method!r}; use one of {POINT_ALIGNMENTS}")
