"""Label maps -> the per-instance table of :class:`Instances` (counts, 3D centroids, boxes, features)."""

from __future__ import annotations

import numpy as np
import torch

from iggt.errors import InputError
from iggt.structures import Instances

GEOMETRY_SAMPLE = 200_000
"""Most points per instance used for its box and centroid (an even subset of its pixels)."""

MEAN_CHUNK = 1 << 20
"""Pixels per step of the mean features' float64 sums (their memory, not their result)."""

LEAST_CONFIDENT_FRACTION = 0.25
"""Each instance's least confident quarter of points (edges, flying pixels) is left out of its box."""


def lift_instances(
    labels: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    features: np.ndarray,
    box_percentile: float = 2.0,
) -> Instances:
    """Summarise label maps of S views as :class:`Instances`.

    Boxes and centroids are robust to the outliers of predicted point maps: per instance, the
    finite points below the instance's 25th confidence percentile are set aside, the box spans
    the [p, 100 - p] percentiles of the rest on each axis, and the centroid is the
    confidence-weighted mean of the points inside the box. An instance without finite points
    gets NaN centroid and box.

    Args:
        labels: (S, H, W) int instance IDs, 0 = none.
        points: (S, H, W, 3) world points.
        confidence: (S, H, W) point confidence (weights; negative values count as 0).
        features: (S, H, W, C) instance features.
        box_percentile: p above.

    Returns:
        Instances with the IDs present in ``labels``, ascending.
    """
    if labels.shape != points.shape[:3] or labels.shape != features.shape[:3] or labels.shape != confidence.shape:
        raise InputError(
            f"labels {labels.shape}, points {points.shape}, confidence {confidence.shape} and features "
            f"{features.shape} must share (S, H, W)"
        )
    labels = np.asarray(labels, dtype=np.int32)
    ids = np.unique(labels[labels > 0])
    # row of each pixel in the table; unlabelled pixels go to a spare row K that is dropped
    rows = np.where(labels > 0, np.searchsorted(ids, labels), len(ids)).reshape(-1)
    views = np.repeat(np.arange(labels.shape[0]), labels[0].size)
    pixel_counts = np.bincount(rows * labels.shape[0] + views, minlength=(len(ids) + 1) * labels.shape[0])
    flat_points, flat_confidence = points.reshape(-1, 3), confidence.reshape(-1)
    geometry = [
        _robust_geometry(flat_points[members], flat_confidence[members], box_percentile)
        for members in _members(rows, len(ids))
    ]
    centroids, bbox_min, bbox_max = (np.array([g[k] for g in geometry], np.float32).reshape(-1, 3) for k in range(3))
    return Instances(
        labels=labels,
        ids=ids,
        pixel_counts=pixel_counts.reshape(len(ids) + 1, labels.shape[0])[: len(ids)],
        centroids=centroids,
        bbox_min=bbox_min,
        bbox_max=bbox_max,
        mean_features=_mean_features(features.reshape(-1, features.shape[-1]), rows, len(ids)),
    )


def _members(rows: np.ndarray, count: int) -> list[np.ndarray]:
    """(N,) table row per pixel (``count`` = none) -> for each row, at most GEOMETRY_SAMPLE pixel
    indices spread evenly over its pixels (percentiles need no more)."""
    order = np.argsort(rows, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(rows, minlength=count + 1))[:-1])[:count]
    return [group[:: -(-len(group) // GEOMETRY_SAMPLE)] for group in groups]


def _robust_geometry(points: np.ndarray, confidence: np.ndarray, percentile: float) -> tuple:
    """(M, 3) points, (M,) confidence -> (centroid, box minimum, box maximum), each (3,)."""
    finite = np.isfinite(points).all(1) & np.isfinite(confidence)
    points, confidence = points[finite].astype(np.float64), np.clip(confidence[finite], 0, None)
    if len(points) == 0:
        return (np.full(3, np.nan),) * 3
    confident = confidence >= np.quantile(confidence, LEAST_CONFIDENT_FRACTION)
    points, confidence = points[confident], confidence[confident]
    low, high = np.percentile(points, [percentile, 100 - percentile], axis=0)
    inside = ((points >= low) & (points <= high)).all(1)
    weights = confidence[inside] if confidence[inside].sum() > 0 else np.ones(inside.sum())
    centroid = (points[inside] * weights[:, None]).sum(0) / weights.sum() if inside.any() else points.mean(0)
    return centroid, low, high


def _mean_features(features: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """(N, C) features, (N,) table rows -> (K, C) unit-norm mean per row (non-finite features ignored)."""
    sums = torch.zeros(count + 1, features.shape[1], dtype=torch.float64)
    # in chunks: a float64 copy of a long capture's features would be 8 bytes x C per pixel
    for start in range(0, len(features), MEAN_CHUNK):
        values = torch.from_numpy(np.ascontiguousarray(features[start : start + MEAN_CHUNK]))
        finite = torch.isfinite(values).all(1)
        index = torch.from_numpy(rows[start : start + MEAN_CHUNK]).masked_fill(~finite, count)
        sums.index_add_(0, index, torch.nan_to_num(values).double())
    return torch.nn.functional.normalize(sums[:count], dim=1).float().numpy()
