"""The summaries of :func:`iggt.instances.lift_instances` in torch on a device (a GPU).

Each chunk of views is copied to the device once; what stays there is small: the (K + 1, C)
float64 feature sums and each instance's geometry sample (at most GEOMETRY_SAMPLE points, the
same pixels as the NumPy path picks: every stride-th of the instance's pixels in pixel order).
The robust boxes and centroids of all instances are then computed together in float64, by
segmented sorts: the quantiles follow NumPy's default ("linear", its lerp and, for the confidence
cut, its arithmetic in the confidence's own float type), so the same points are set aside and
the boxes are NumPy's up to rounding of the sums.
"""

from __future__ import annotations

import numpy as np
import torch

from iggt.instances.lifting import LEAST_CONFIDENT_FRACTION, LiftPlan
from iggt.instances.transfer import to_device


def summarise_on_device(
    plan: LiftPlan,
    labels: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    features: np.ndarray,
    box_percentile: float,
    device: torch.device,
) -> tuple[torch.Tensor, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """What :func:`lift_instances`' host path returns, computed on ``device``: (K + 1, C) float64
    CPU feature sums per row (the last: the non-finite features) and (K, 3) float32 centroids,
    box minima and box maxima (NaN for an instance without finite points)."""
    count, channels = len(plan.ids), features.shape[-1]
    ids = torch.from_numpy(plan.ids).to(device)
    # a spare row `count` for the pixels of no instance: stride 1, so indexing it needs no mask
    stride = torch.from_numpy(np.append(plan.stride, 1)).to(device)
    # float32 confidence keeps float32 quantile arithmetic, as NumPy's (anything else: float64)
    weight_dtype = np.float32 if confidence.dtype == np.float32 else np.float64
    sums = torch.zeros(count + 1, channels, dtype=torch.float64, device=device)
    taken = []
    for views in plan.chunks:
        chunk_labels = to_device(labels[views], device).reshape(-1)
        rows = torch.where(chunk_labels > 0, torch.searchsorted(ids, chunk_labels), count)
        values = to_device(features[views], device).reshape(-1, channels).double()
        sums.index_add_(0, torch.where(torch.isfinite(values).all(1), rows, count), values)
        earlier = torch.from_numpy(np.append(plan.earlier[:, views.start], 0)).to(device)
        chosen, chosen_rows = _geometry_sample(rows, count, stride, earlier)
        chunk_points = to_device(points[views], device).reshape(-1, 3)
        chunk_confidence = to_device(confidence[views], device, weight_dtype).reshape(-1)
        taken.append((chosen_rows, chunk_points[chosen].double(), chunk_confidence[chosen]))
    rows, sample_points, sample_confidence = (torch.cat(parts) for parts in zip(*taken, strict=True))
    geometry = _robust_geometry(rows, sample_points, sample_confidence, count, box_percentile)
    return sums.cpu(), tuple(part.float().cpu().numpy() for part in geometry)


def _geometry_sample(
    rows: torch.Tensor, count: int, stride: torch.Tensor, earlier: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P,) rows of a chunk's pixels (``count``: none) -> the pixels the host path takes for the
    geometry, as (M,) indices into the chunk and their (M,) rows: those whose rank among their
    instance's pixels of the whole capture (``earlier`` + rank in the chunk) is a multiple of the
    instance's ``stride``; (count + 1,) ``stride`` and ``earlier``."""
    grouped, order = torch.sort(rows, stable=True)
    sizes = torch.bincount(rows, minlength=count + 1)
    first = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(len(rows), device=rows.device) - first[grouped]
    keep = (grouped < count) & ((earlier[grouped] + rank) % stride[grouped] == 0)
    return order[keep], grouped[keep]


def _robust_geometry(
    rows: torch.Tensor, points: torch.Tensor, confidence: torch.Tensor, count: int, percentile: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(M,) instance rows, (M, 3) float64 points, (M,) confidence of every instance's sample ->
    (K, 3) float64 centroids, box minima and box maxima: the host path's ``_robust_geometry``
    of every instance at once."""
    finite = torch.isfinite(points).all(1) & torch.isfinite(confidence)
    rows, points, confidence = rows[finite], points[finite], confidence[finite].clamp(min=0)
    cut = segment_quantiles(confidence[None], rows, count, [LEAST_CONFIDENT_FRACTION], weak=True)[0, 0]
    confident = confidence >= cut[rows]
    rows, points, confidence = rows[confident], points[confident], confidence[confident]
    low, high = segment_quantiles(points.T, rows, count, [percentile / 100, (100 - percentile) / 100])
    inside = ((points >= low.T[rows]) & (points <= high.T[rows])).all(1)
    members = torch.bincount(rows, minlength=count).double()
    held = torch.bincount(rows[inside], minlength=count).double()
    weight_sum = _segment_sum(confidence[inside].double()[:, None], rows[inside], count)[:, 0]
    # an instance whose points inside its box all have confidence 0 weighs them equally
    weights = torch.where(weight_sum[rows] > 0, confidence.double(), 1.0) * inside
    weighted = _segment_sum(points * weights[:, None], rows, count) / _segment_sum(weights[:, None], rows, count)
    # no point inside the box (its axes' percentiles exclude one another): the points' mean
    centroid = torch.where(held[:, None] > 0, weighted, _segment_sum(points, rows, count) / members[:, None])
    # rows without finite points got no members: NaN from 0 / 0 and from the quantiles
    return centroid, low.T, high.T


def _segment_sum(values: torch.Tensor, rows: torch.Tensor, count: int) -> torch.Tensor:
    """(M, D) values, (M,) rows in [0, count) -> (count, D) sums per row."""
    return values.new_zeros(count, values.shape[1]).index_add_(0, rows, values)


def segment_quantiles(
    values: torch.Tensor, rows: torch.Tensor, count: int, quantiles: list[float], weak: bool = False
) -> torch.Tensor:
    """(D, M) values, (M,) rows in [0, count) -> (Q, D, count) quantiles of each row's values per
    d, as ``np.quantile(..., method="linear")``; NaN for a row without values.

    NumPy interpolates between the sorted values a (at floor(h)) and b (at h's ceiling, h = (n - 1) q)
    as a + (b - a) t below t = 0.5, else b - (b - a) (1 - t), in float64 for an array of
    quantiles; for a single Python float quantile (``weak``) t and 1 - t are cast to the values'
    dtype first. Repeating that gives NumPy's quantiles of the same values bit for bit.
    """
    if len(rows) == 0:
        return values.new_full((len(quantiles), len(values), count), float("nan"))
    by_value = torch.sort(values, dim=1, stable=True).indices
    by_row = torch.sort(rows[by_value], dim=1, stable=True).indices  # stable: sorted within each row
    ordered = torch.gather(torch.gather(values, 1, by_value), 1, by_row)
    sizes = torch.bincount(rows, minlength=count)
    first = torch.cumsum(sizes, 0) - sizes
    last = (first + sizes - 1).clamp(min=0)
    q = torch.tensor(quantiles, dtype=torch.float64, device=values.device)[:, None]
    virtual = (sizes - 1).double()[None] * q  # (Q, count)
    previous = torch.floor(virtual)
    t = virtual - previous
    # NumPy's neighbours: floor(h) and the next value, at most the row's last (h <= n - 1 as q <= 1);
    # rows without values index anywhere in range, their result is replaced by NaN
    low = (first + previous.long()).clamp(0, len(rows) - 1)
    high = torch.minimum(low + 1, last)
    a, b = ordered[:, low], ordered[:, high]  # (D, Q, count)
    step = b - a
    forward, backward = (t, 1 - t) if not weak else (t.to(values.dtype), (1 - t).to(values.dtype))
    result = torch.where(t >= 0.5, b - step * backward, a + step * forward).transpose(0, 1)
    return torch.where(sizes > 0, result, float("nan"))
