"""Label maps -> the per-instance table of :class:`Instances` (counts, 3D centroids, boxes, features)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from iggt.errors import InputError
from iggt.instances.parallel import map_threads
from iggt.structures import Instances

GEOMETRY_SAMPLE = 200_000
"""Most points per instance used for its box and centroid (an even subset of its pixels)."""

MEAN_CHUNK = 1 << 20
"""Pixels per float32 part of the mean features' sums (added up in float64)."""

CHUNK_PIXELS = 1 << 21
"""Pixels of the views read at once (the temporaries' size, not the result)."""

LEAST_CONFIDENT_FRACTION = 0.25
"""Each instance's least confident quarter of points (edges, flying pixels) is left out of its box."""


@dataclass(frozen=True)
class LiftPlan:
    """How :func:`lift_instances` reads S views, the same for its host and its device path.

    Attributes:
        chunks: the views read at once (:func:`view_chunks`).
        ids: (K,) int32 IDs present (> 0), ascending.
        pixel_counts: (K, S) int64 pixels of each ID in each view.
        stride: (K,) int64: an instance keeps every stride-th of its pixels (in pixel order, from
            its first) for its box and centroid, at most :data:`GEOMETRY_SAMPLE` of them.
        earlier: (K, S) int64 pixels of each instance in the views before each view: the rank,
            among the instance's pixels, of a chunk's first pixel of it.
    """

    chunks: list[slice]
    ids: np.ndarray
    pixel_counts: np.ndarray
    stride: np.ndarray
    earlier: np.ndarray


def lift_instances(
    labels: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    features: np.ndarray,
    box_percentile: float = 2.0,
    device: torch.device | None = None,
) -> Instances:
    """Summarise label maps of S views as :class:`Instances`.

    Boxes and centroids are robust to the outliers of predicted point maps: per instance, the
    finite points below the instance's 25th confidence percentile are set aside, the box spans
    the [p, 100 - p] percentiles of the rest on each axis, and the centroid is the
    confidence-weighted mean of the points inside the box. An instance without finite points
    gets NaN centroid and box.

    The views are read a few at a time (:data:`CHUNK_PIXELS`), so the temporaries are bounded by
    that, not by S: the arrays may be memory maps of a long capture on disk.

    Args:
        labels: (S, H, W) int instance IDs, 0 = none (negative values count as none).
        points: (S, H, W, 3) world points.
        confidence: (S, H, W) point confidence (weights; negative values count as 0).
        features: (S, H, W, C) instance features.
        box_percentile: p above.
        device: None summarises in NumPy on host threads; a torch device summarises there, each
            chunk of views copied to it and only the per-instance sums and samples kept
            (:mod:`iggt.instances.lifting_torch`): the same IDs and counts, the same geometry
            samples, means and geometry equal up to float rounding.

    Returns:
        Instances with the IDs present in ``labels``, ascending.
    """
    if labels.shape != points.shape[:3] or labels.shape != features.shape[:3] or labels.shape != confidence.shape:
        raise InputError(
            f"labels {labels.shape}, points {points.shape}, confidence {confidence.shape} and features "
            f"{features.shape} must share (S, H, W)"
        )
    labels = np.asarray(labels, dtype=np.int32)
    ids, pixel_counts = _ids_and_counts(labels)
    stride = -(-pixel_counts.sum(1) // GEOMETRY_SAMPLE)
    earlier = np.cumsum(pixel_counts, axis=1) - pixel_counts
    plan = LiftPlan(view_chunks(labels.shape), ids, pixel_counts, stride, earlier)
    if device is None:
        sums, geometry = _summarise_on_host(plan, labels, points, confidence, features, box_percentile)
    else:
        from iggt.instances.lifting_torch import summarise_on_device  # it imports this module

        sums, geometry = summarise_on_device(plan, labels, points, confidence, features, box_percentile, device)
    centroids, bbox_min, bbox_max = geometry
    return Instances(
        labels=labels,
        ids=ids,
        pixel_counts=pixel_counts,
        centroids=centroids,
        bbox_min=bbox_min,
        bbox_max=bbox_max,
        mean_features=torch.nn.functional.normalize(sums[: len(ids)], dim=1).float().numpy(),
    )


def _summarise_on_host(
    plan: LiftPlan,
    labels: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    features: np.ndarray,
    box_percentile: float,
) -> tuple[torch.Tensor, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`lift_instances`' summaries in NumPy, a chunk per host thread: (K + 1, C) float64
    feature sums per row (the last: the non-finite features) and (K, 3) float32 centroids, box
    minima and box maxima."""
    ids, stride, earlier = plan.ids, plan.stride, plan.earlier
    count = len(ids)

    def summarise(views: slice) -> tuple[torch.Tensor, dict[int, tuple[np.ndarray, np.ndarray]]]:
        rows = _rows(np.asarray(labels[views]), ids).reshape(-1)
        sums = _feature_sums(np.asarray(features[views]).reshape(-1, features.shape[-1]), rows, count)
        labelled = np.flatnonzero(rows < count)
        order = labelled[np.argsort(rows[labelled], kind="stable")]
        present = np.bincount(rows[labelled], minlength=count)
        groups = np.split(order, np.cumsum(present)[:-1])
        chunk_points = np.asarray(points[views]).reshape(-1, 3)
        chunk_confidence = np.asarray(confidence[views]).reshape(-1)
        taken = {}
        for row in np.flatnonzero(present):
            chosen = groups[row][(-earlier[row, views.start]) % stride[row] :: stride[row]]
            taken[row] = (chunk_points[chosen], chunk_confidence[chosen])
        return sums, taken

    parts = map_threads(summarise, plan.chunks)
    sums = sum((part[0] for part in parts), torch.zeros(count + 1, features.shape[-1], dtype=torch.float64))
    samples = [[part[1][row] for part in parts if row in part[1]] for row in range(count)]
    geometry = [
        _robust_geometry(*(np.concatenate(parts) for parts in zip(*taken, strict=True)), box_percentile)
        if taken
        else (np.full(3, np.nan),) * 3
        for taken in samples
    ]
    return sums, tuple(np.array([g[k] for g in geometry], np.float32).reshape(-1, 3) for k in range(3))


def instance_means(labels: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, H, W) int labels, (S, H, W, C) features -> (K,) int32 IDs present, ascending, and (K, C)
    float32 unit-norm mean feature of each: :func:`lift_instances`'s IDs and means, without the rest."""
    chunks = view_chunks(labels.shape)
    ids, _ = _ids_and_counts(labels)

    def summed(views: slice) -> torch.Tensor:
        rows = _rows(np.asarray(labels[views]), ids).reshape(-1)
        return _feature_sums(np.asarray(features[views]).reshape(-1, features.shape[-1]), rows, len(ids))

    sums = sum(map_threads(summed, chunks), torch.zeros(len(ids) + 1, features.shape[-1], dtype=torch.float64))
    return ids, torch.nn.functional.normalize(sums[: len(ids)], dim=1).float().numpy()


def view_chunks(shape: tuple[int, ...], chunk_pixels: int | None = None) -> list[slice]:
    """Slices of the S views of (S, H, W, ...) arrays, each of about ``chunk_pixels`` pixels
    (None: :data:`CHUNK_PIXELS`; at least one view): how a long capture's maps are read a few views at a time."""
    step = max(1, (CHUNK_PIXELS if chunk_pixels is None else chunk_pixels) // max(shape[1] * shape[2], 1))
    return [slice(start, min(start + step, shape[0])) for start in range(0, shape[0], step)]


def _ids_and_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,) int32 IDs present (> 0), ascending, and (K, S) int64 pixels of each in each view."""
    per_view = map_threads(lambda view: _positive_counts(np.asarray(labels[view]).reshape(-1)), range(labels.shape[0]))
    ids = np.unique(np.concatenate([values for values, _ in per_view])) if per_view else np.zeros(0, np.int32)
    pixel_counts = np.zeros((len(ids), labels.shape[0]), np.int64)
    for view, (values, counts) in enumerate(per_view):
        pixel_counts[np.searchsorted(ids, values), view] = counts
    return ids.astype(np.int32), pixel_counts


def _positive_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positive values of (N,) int ``values`` and how often each occurs."""
    top = int(values.max(initial=0))
    if _table_pays(top, len(values)):
        counts = np.bincount(np.clip(values, 0, None), minlength=top + 1)
        present = np.flatnonzero(counts[1:]) + 1
        return present.astype(np.int32), counts[present]
    present, counts = np.unique(values[values > 0], return_counts=True)
    return present.astype(np.int32), counts


def _rows(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(...) int64 row of each label's ID in ``ids`` (all of ``labels``' positive values); len(ids) for none."""
    top = int(ids.max(initial=0))
    if _table_pays(top, labels.size):
        table = np.full(top + 1, len(ids), np.int64)
        table[ids] = np.arange(len(ids))
        return table[np.clip(labels, 0, None)]
    return np.where(labels > 0, np.searchsorted(ids, labels), len(ids))


def _table_pays(top: int, size: int) -> bool:
    """Whether a table indexed by IDs up to ``top`` is cheaper than sorting ``size`` labels."""
    return top <= 4 * size + 1024


def _feature_sums(features: np.ndarray, rows: np.ndarray, count: int) -> torch.Tensor:
    """(N, C) features, (N,) rows -> (count + 1, C) float64 sums per row; non-finite features go to
    the spare row ``count``, which the caller drops (summed in float32 parts of MEAN_CHUNK pixels)."""
    sums = torch.zeros(count + 1, features.shape[1], dtype=torch.float64)
    ones = np.ones(features.shape[1], np.float32)
    for start in range(0, len(features), MEAN_CHUNK):
        values = np.ascontiguousarray(features[start : start + MEAN_CHUNK], np.float32)
        # a row's sum is non-finite exactly when one of its values is (unit features cannot overflow)
        index = np.where(np.isfinite(values @ ones), rows[start : start + MEAN_CHUNK], count)
        part = torch.zeros(count + 1, features.shape[1], dtype=torch.float32)
        sums += part.index_add_(0, torch.from_numpy(index), torch.from_numpy(values)).double()
    return sums


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
