"""Aligning predicted 3D points to ground truth: Sim(3) (Umeyama), SE(3), or scale only.

The Sim(3) and SE(3) fits live in :mod:`iggt.geometry.similarity` (long captures align their
windows with them too); this module picks the alignment an evaluation asks for.

A feed-forward reconstruction lives in the first camera's frame at an arbitrary scale; before
comparing it with ground truth we find the transform ``target ~ scale * rotation @ source + translation``
that minimises the (weighted) sum of squared distances over corresponding points (Umeyama 1991,
"Least-squares estimation of transformation parameters between two point patterns"). Float64.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from iggt.errors import InputError
from iggt.geometry.similarity import Similarity, check_correspondences, umeyama

PointAlignment = Literal["sim3", "se3", "scale", "none"]
POINT_ALIGNMENTS = ("sim3", "se3", "scale", "none")


def fit_scale(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Similarity:
    """Scale only, about the origin (the first camera): s = <w source, target> / <w source, source>.

    Use when the prediction is already in the ground truth's frame (e.g. both in the first camera's
    frame) and only the unknown global scale must be removed.
    """
    w = check_correspondences(source, target, weights)
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
