"""Depth-map metrics: AbsRel and ratio thresholds after per-map scale (or scale-and-shift) alignment.

Protocol (the paper's, section 7 of the reference notes): every predicted depth map is aligned to
its ground truth on its own ("per-map"), by default with the median scale
``s = median(gt) / median(pred)`` over the valid pixels, because a feed-forward model predicts depth
only up to scale. Then, over the valid pixels of that map,

- ``abs_rel``  = mean(|pred - gt| / gt),
- ``delta_1.25`` = fraction of pixels with max(gt / pred, pred / gt) < 1.25,
- ``tau_1.03``   = the same fraction with the paper's tighter threshold 1.03.

Scene scores are the mean of the per-map scores (each view weighs the same). All values are
fractions (the paper prints them x100). Computation is float64.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from iggt.errors import InputError

DepthAlignment = Literal["median", "scale_shift", "none"]
DEPTH_ALIGNMENTS = ("median", "scale_shift", "none")


def valid_depth_mask(gt_depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(...) bool: ground truth finite and > 0, and inside ``mask`` when one is given."""
    valid = np.isfinite(gt_depth) & (gt_depth > 0)
    return valid if mask is None else valid & mask.astype(bool)


def align_depth(
    pred_depth: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray, method: DepthAlignment = "median"
) -> np.ndarray:
    """Align ONE depth map to its ground truth.

    Args:
        pred_depth: (H, W) predicted depth.
        gt_depth: (H, W) ground-truth depth.
        valid: (H, W) bool pixels used to fit the alignment (at least 1 for median, 2 for scale_shift).
        method: "median" multiplies by median(gt) / median(pred); "scale_shift" fits s * pred + b to gt
            by least squares; "none" returns the prediction unchanged.

    Returns:
        (H, W) float64 aligned prediction.
    """
    pred = pred_depth.astype(np.float64)
    if method == "none":
        return pred
    p, g = pred[valid], gt_depth[valid].astype(np.float64)
    if method == "median":
        return pred * (np.median(g) / np.median(p))
    if method == "scale_shift":
        design = np.stack([p, np.ones_like(p)], axis=1)
        (scale, shift), *_ = np.linalg.lstsq(design, g, rcond=None)
        return pred * scale + shift
    raise InputError(f"unknown depth alignment {method!r}; use one of {DEPTH_ALIGNMENTS}")


def depth_errors(pred_depth: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """AbsRel, delta < 1.25 and tau < 1.03 of one (already aligned) map over its ``valid`` pixels.

    A predicted depth <= 0 (possible after a scale-and-shift fit) never counts as within a threshold.
    """
    p, g = pred_depth[valid].astype(np.float64), gt_depth[valid].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p > 0, np.maximum(g / p, p / g), np.inf)
    return {
        "abs_rel": float(np.mean(np.abs(p - g) / g)),
        "delta_1.25": float(np.mean(ratio < 1.25)),
        "tau_1.03": float(np.mean(ratio < 1.03)),
    }


def depth_metrics(
    pred_depth: np.ndarray,
    gt_depth: np.ndarray,
    mask: np.ndarray | None = None,
    alignment: DepthAlignment = "median",
) -> dict[str, float]:
    """Per-map aligned depth metrics averaged over the maps of a scene.

    Args:
        pred_depth: (S, H, W) predicted depth.
        gt_depth: (S, H, W) ground-truth depth; pixels that are 0, negative or not finite are invalid.
        mask: optional (S, H, W) bool further restricting the evaluated pixels.
        alignment: per-map alignment, see :func:`align_depth`.

    Returns:
        {"abs_rel", "delta_1.25", "tau_1.03"}: means over the maps that have >= 2 valid pixels
        (maps without are skipped; NaN if none is left).
    """
    if pred_depth.shape != gt_depth.shape or pred_depth.ndim != 3:
        raise InputError(f"depth maps must both be (S, H, W); got {pred_depth.shape} and {gt_depth.shape}")
    valid = valid_depth_mask(gt_depth, mask) & np.isfinite(pred_depth)
    per_map = [
        depth_errors(align_depth(pred_depth[i], gt_depth[i], valid[i], alignment), gt_depth[i], valid[i])
        for i in range(len(pred_depth))
        if valid[i].sum() >= 2
    ]
    keys = ("abs_rel", "delta_1.25", "tau_1.03")
    if not per_map:
        return dict.fromkeys(keys, float("nan"))
    return {key: float(np.mean([m[key] for m in per_map])) for key in keys}
