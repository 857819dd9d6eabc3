"""Per-pixel vectors -> instance labels shared by all views.

Why this design: the official demo runs HDBSCAN on every pixel of every view, which costs minutes
for 2 M pixels because HDBSCAN's time grows about quadratically. Instances are large sets of
pixels with similar features, so a random sample of about ten thousand confident pixels already
contains every instance worth keeping. We run HDBSCAN (density-based: no number of clusters to
choose, outliers left out) on that sample only, merge clusters whose means are closer than
``merge_threshold`` (HDBSCAN splits an object whose features drift, e.g. under lighting), then
give every pixel of every view the label of its nearest cluster centre with chunked matrix
products. Because all views are labelled against the same centres, an object has the same ID in
every view by construction. Pixels far from every centre are noise; when some remain, they are
sampled and clustered again (``refine_rounds``), which recovers instances too small to show up in
the first sample. Cost: HDBSCAN's Borůvka tree on the sample (the ``hdbscan`` package, near-linear
in the sample in these few dimensions, where scikit-learn's Prim tree is quadratic: 0.6 s instead
of 1.3 s for 10,000 8-d vectors on one core) plus O(N x clusters) for the assignment. On a GPU
the passes over all pixels (finite rows, the confidence cut, the pools, the assignment, the
relabelling) and the sample's spanning tree, HDBSCAN's costly part
(:mod:`iggt.instances.spanning_tree`), run there instead, with the same samples and labels.
"""

from __future__ import annotations

import math

import hdbscan
import numpy as np
import torch

from iggt.device import resolve_device
from iggt.errors import InputError
from iggt.instances.assignment import nearest_centre
from iggt.instances.config import InstanceConfig
from iggt.instances.lifting_torch import segment_quantiles
from iggt.instances.points import confident_pixels
from iggt.instances.profile import timed_part
from iggt.instances.spanning_tree import hdbscan_labels
from iggt.instances.transfer import to_device, torch_path_device

SMALLEST_SAMPLE_CLUSTER = 5
"""HDBSCAN's min_cluster_size never goes below this, so sampling noise does not become clusters."""

POSITION_STATISTICS_SAMPLE = 65536
"""Rows used to estimate the scene centre and scale of the positions."""

DEVICE_BYTES_PER_PIXEL = 64
"""What the device path holds per pixel besides its float32 vector, at its peak (the int64 pool,
nearest centre and labels, the masks, the confidence and the two index sorts of its quantile)."""


def cluster_features(
    features: np.ndarray,
    positions: np.ndarray | None = None,
    config: InstanceConfig | None = None,
    confidence: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster N pixels (of any number of views) into instances.

    Args:
        features: (N, C) float per-pixel vectors (unit instance features, or any Euclidean
            features such as RGB); rows with NaN or inf are labelled 0.
        positions: (N, 3) 3D points or None; when given, they are centred, scaled by the scene's
            median radius, weighted by ``config.position_weight`` and appended to the features.
        config: clustering parameters (defaults: ``InstanceConfig()``).
        confidence: (N,) per-pixel confidence or None; only pixels passing
            ``config.confidence_quantile`` and ``config.confidence_threshold`` are sampled.

    Returns:
        (N,) int32 labels: 0 = noise, else 1..K with 1 the largest instance.
    """
    config = config or InstanceConfig()
    _check_inputs(features, positions, confidence)
    rng = np.random.default_rng(config.seed)
    vectors = clustering_space(features, positions, config.position_weight, rng)
    min_pixels = config.min_pixels(len(vectors))
    device = torch_path_device(config.device)
    if device is not None and fits_on_device(len(vectors), vectors.shape[1], device):
        return _cluster_on_device(vectors, confidence, min_pixels, config, rng, device)
    valid = np.isfinite(vectors).all(1)
    eligible = valid & _confident(confidence, config)
    nearest, centres, counts = _cluster_in_rounds(vectors, valid, eligible, min_pixels, config, rng)
    if len(centres) == 0:
        return np.zeros(len(vectors), dtype=np.int32)
    groups = merge_centres(centres, counts, config.merge_threshold)
    labels = np.where(nearest >= 0, groups[nearest] + 1, 0)
    return relabel_by_size(labels, min_pixels)


def _cluster_in_rounds(
    vectors: np.ndarray,
    valid: np.ndarray,
    eligible: np.ndarray,
    min_pixels: int,
    config: InstanceConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample, cluster and assign; then again on the pixels still unassigned (``refine_rounds``).

    Returns (N,) int64 nearest centre per pixel (-1: noise), (P, D) centres, (P,) sample counts.
    """
    device = resolve_device(config.device)
    nearest = np.full(len(vectors), -1, dtype=np.int64)
    centres, counts = np.zeros((0, vectors.shape[1]), np.float32), np.zeros(0, np.int64)
    for _ in range(_rounds(config)):
        pool = np.flatnonzero(eligible & (nearest < 0))
        sample = rng.choice(pool, size=min(config.sample_size, len(pool)), replace=False)
        min_cluster_size = _sample_cluster_size(min_pixels, len(sample), len(pool))
        new_centres, new_counts = sample_clusters(vectors[sample], min_cluster_size)
        if len(new_centres) == 0:
            break
        targets = np.flatnonzero(valid & (nearest < 0)) if len(centres) else slice(None)
        with timed_part("assignment"):
            index = nearest_centre(vectors[targets], new_centres, config.noise_distance, device, config.chunk_size)
        nearest[targets] = np.where(index >= 0, index + len(centres), -1)
        centres, counts = np.concatenate([centres, new_centres]), np.concatenate([counts, new_counts])
    return nearest, centres, counts


def _cluster_on_device(
    vectors: np.ndarray,
    confidence: np.ndarray | None,
    min_pixels: int,
    config: InstanceConfig,
    rng: np.random.Generator,
    device: torch.device,
) -> np.ndarray:
    """:func:`cluster_features` after the clustering space, with the pixel-wide arrays on ``device``
    (a GPU): the same rounds, the same draws of ``rng`` and so the same samples, HDBSCAN's tree
    there too; only the (M, D) samples, the (P, D) centres and the final labels cross to the host.
    Returns (N,) int32 labels, as the host path (bit for bit but where a tie joins the tree)."""
    x = to_device(vectors, device, np.float32)
    valid = torch.isfinite(x).all(1)
    eligible = valid & _confident_on_device(confidence, config, device)
    nearest = torch.full((len(x),), -1, dtype=torch.int64, device=device)
    centres, counts = np.zeros((0, x.shape[1]), np.float32), np.zeros(0, np.int64)
    for _ in range(_rounds(config)):
        pool = torch.nonzero(eligible & (nearest < 0)).squeeze(1)
        # rng.choice(pool, ...) of the host path draws these positions in the pool
        chosen = rng.choice(len(pool), size=min(config.sample_size, len(pool)), replace=False)
        sample = x[pool[torch.from_numpy(chosen).to(device)]].cpu().numpy()
        min_cluster_size = _sample_cluster_size(min_pixels, len(sample), len(pool))
        new_centres, new_counts = sample_clusters(sample, min_cluster_size, device)
        if len(new_centres) == 0:
            break
        targets = torch.nonzero(valid & (nearest < 0)).squeeze(1) if len(centres) else None
        with timed_part("assignment"):
            index = nearest_centre(
                x if targets is None else x[targets], new_centres, config.noise_distance, device, config.chunk_size
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # the part's wall time is its own, not the next one's
        index = torch.where(index >= 0, index + len(centres), -1)
        if targets is None:
            nearest = index
        else:
            nearest[targets] = index
        centres, counts = np.concatenate([centres, new_centres]), np.concatenate([counts, new_counts])
    if len(centres) == 0:
        return np.zeros(len(x), dtype=np.int32)
    groups = torch.from_numpy(merge_centres(centres, counts, config.merge_threshold) + 1).to(device)
    labels = torch.cat([groups.new_zeros(1), groups])[nearest + 1]  # nearest -1 (noise) -> 0
    mapping = size_ranks(torch.bincount(labels, minlength=1).cpu().numpy(), min_pixels)
    return torch.from_numpy(mapping).to(device)[labels].cpu().numpy()  # relabel_by_size on the device


def fits_on_device(pixels: int, dims: int, device: torch.device) -> bool:
    """Whether the device path's arrays for ``pixels`` vectors of ``dims`` take at most half of the
    GPU's free memory; else the host path runs (a 1,000-frame capture at 336 x 504 needs about
    16 GB: fine after the network on an H200, not on a 24 GB card)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return pixels * (4 * dims + DEVICE_BYTES_PER_PIXEL) <= free // 2


def _confident_on_device(
    confidence: np.ndarray | None, config: InstanceConfig, device: torch.device
) -> torch.Tensor | bool:
    """:func:`_confident` on ``device``: NumPy's quantile bit for bit (:func:`segment_quantiles`)."""
    if confidence is None:
        return True
    # float32 confidence keeps float32 quantile arithmetic, as NumPy's (anything else: float64)
    values = to_device(confidence, device, np.float32 if confidence.dtype == np.float32 else np.float64)
    finite = torch.isfinite(values)
    if not bool(finite.any()):
        return torch.zeros_like(finite)
    taking = values[finite]
    rows = torch.zeros(len(taking), dtype=torch.int64, device=device)
    quantile = segment_quantiles(taking[None], rows, 1, [config.confidence_quantile], weak=True)[0, 0, 0]
    cut = max(float(quantile), config.confidence_threshold)
    return finite & (values >= cut)


def _rounds(config: InstanceConfig) -> int:
    """The first round, then ``refine_rounds`` on what is still unassigned (when noise is cut)."""
    return 1 + (config.refine_rounds if config.noise_distance is not None else 0)


def _sample_cluster_size(min_pixels: int, sampled: int, pool: int) -> int:
    """HDBSCAN's min_cluster_size for ``sampled`` of ``pool`` pixels: an instance of ``min_pixels``
    is expected to hold min_pixels * sampled / pool samples; half of that makes a cluster."""
    return max(SMALLEST_SAMPLE_CLUSTER, math.ceil(0.5 * min_pixels * sampled / max(pool, 1)))


def _check_inputs(features: np.ndarray, positions: np.ndarray | None, confidence: np.ndarray | None) -> None:
    if features.ndim != 2 or len(features) == 0:
        raise InputError(f"features must be a non-empty (N, C) array, got shape {features.shape}")
    if positions is not None and positions.shape != (len(features), 3):
        raise InputError(f"positions must be (N, 3) = {(len(features), 3)}, got {positions.shape}")
    if confidence is not None and confidence.shape != (len(features),):
        raise InputError(f"confidence must be (N,) = {(len(features),)}, got {confidence.shape}")


def clustering_space(
    features: np.ndarray, positions: np.ndarray | None, position_weight: float, rng: np.random.Generator
) -> np.ndarray:
    """(N, C) features and optional (N, 3) positions -> (N, C) or (N, C + 3) float32 vectors.

    Positions are centred on the median point and divided by the median distance to it, both
    estimated on a random subset, so ``position_weight`` does not depend on the scene's units.
    """
    features = np.asarray(features, dtype=np.float32)
    if positions is None:
        return features
    finite = np.flatnonzero(np.isfinite(positions).all(1))
    if len(finite) == 0:
        raise InputError("positions has no finite row; pass positions=None or fix the point map")
    subset = positions[rng.choice(finite, size=min(POSITION_STATISTICS_SAMPLE, len(finite)), replace=False)]
    centre = np.median(subset, axis=0)
    scale = max(float(np.median(np.linalg.norm(subset - centre, axis=1))), 1e-12)
    scaled = (positions - centre) * (position_weight / scale)
    return np.concatenate([features, scaled.astype(np.float32)], axis=1)


def _confident(confidence: np.ndarray | None, config: InstanceConfig) -> np.ndarray | bool:
    """(N,) bool: pixels confident enough to be sampled (True when there is no confidence)."""
    if confidence is None:
        return True
    quantile, threshold = config.confidence_quantile, config.confidence_threshold
    return confident_pixels(confidence, np.isfinite(confidence), quantile, threshold)


def sample_clusters(
    sample: np.ndarray, min_cluster_size: int, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """HDBSCAN on (M, D) sampled vectors -> ((P, D) cluster means, (P,) member counts)."""
    if len(sample) < max(min_cluster_size, 2):
        return np.zeros((0, sample.shape[1]), np.float32), np.zeros(0, np.int64)
    labels = sample_labels(sample, min_cluster_size, device)
    kept = labels >= 0
    counts = np.bincount(labels[kept], minlength=labels.max() + 1)
    sums = np.zeros((len(counts), sample.shape[1]), np.float64)
    np.add.at(sums, labels[kept], sample[kept])
    present = counts > 0
    return (sums[present] / counts[present, None]).astype(np.float32), counts[present]


def sample_labels(sample: np.ndarray, min_cluster_size: int, device: torch.device | None = None) -> np.ndarray:
    """HDBSCAN's (M,) labels (-1: noise) of (M, D) sampled vectors, M >= 2.

    ``device`` None: hdbscan's own kd-tree Borůvka on one host core; a device: its spanning tree
    there (:mod:`iggt.instances.spanning_tree`), the same clusters but where a tie joins them.
    """
    # Core distance: the distance to the 9th neighbour besides the point itself (hdbscan counts
    # neighbours without the point, scikit-learn's HDBSCAN with it: its min_samples=10); the
    # official ratio 100/500 would make big clusters very slow.
    neighbours = min(min_cluster_size, 10) - 1
    if device is not None:
        return hdbscan_labels(sample, min_cluster_size, neighbours, device)
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=neighbours,
        algorithm="best",  # Borůvka over a kd-tree in these few dimensions: near-linear, not quadratic
        approx_min_span_tree=False,
        core_dist_n_jobs=1,
    )
    return clusterer.fit(sample).labels_


def merge_centres(centres: np.ndarray, counts: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy centroid-linkage merging of (P, D) centres with (P,) member counts.

    Repeatedly merges the closest pair of groups while their size-weighted means are closer than
    ``threshold``. Returns (P,) int64 group index per centre, numbered 0..G-1.
    """
    means, weights = centres.astype(np.float64), counts.astype(np.float64)
    parent = np.arange(len(centres))
    alive = np.ones(len(centres), dtype=bool)
    distance = np.linalg.norm(means[:, None] - means[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    while alive.sum() > 1:
        i, j = np.unravel_index(np.argmin(distance), distance.shape)
        if distance[i, j] >= threshold:
            break
        means[i] = (weights[i] * means[i] + weights[j] * means[j]) / (weights[i] + weights[j])
        weights[i] += weights[j]
        parent[parent == j] = i
        alive[j] = False
        row = np.where(alive, np.linalg.norm(means - means[i], axis=1), np.inf)
        row[i] = np.inf
        distance[j, :] = distance[:, j] = np.inf
        distance[i, :], distance[:, i] = row, row
    return np.unique(parent, return_inverse=True)[1]


def relabel_by_size(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """(N,) labels, 0 = noise -> (N,) int32 labels 1..K by decreasing size; below ``min_pixels`` -> 0."""
    return size_ranks(np.bincount(labels, minlength=1), min_pixels)[labels]


def size_ranks(sizes: np.ndarray, min_pixels: int) -> np.ndarray:
    """(L,) pixel count per label (label 0: noise) -> (L,) int32 new label per label: 1 for the
    largest, ties in label order; 0 for noise and labels below ``min_pixels``."""
    sizes = sizes.copy()
    sizes[0] = 0
    order = np.argsort(-sizes, kind="stable")
    kept = order[sizes[order] >= min_pixels]
    mapping = np.zeros(len(sizes), dtype=np.int32)
    mapping[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
    return mapping
