"""HDBSCAN's minimum spanning tree of the mutual reachability graph, on a torch device.

Why: on a GPU the instance step should not wait for one host core, where hdbscan's kd-tree
Borůvka takes 0.5 s for the 10,000 sampled pixels (an H200's host). Only the spanning tree is
costly; the single-linkage hierarchy, the condensed tree and the cluster selection that follow
are near-linear and stay hdbscan's own code (:func:`hdbscan_labels`), so the labels are hdbscan's
whenever the spanning tree is.

Method: dense Borůvka in float64, as hdbscan computes. A point's core distance is its distance to
its ``min_samples``-th neighbour, the point itself not counted (hdbscan's); the mutual
reachability of two points is the largest of their distance and their two core distances. Each
round, every point finds its cheapest edge into another component (rows of the distance matrix a
chunk at a time, on the device), and each component adds the cheapest edge of its points. Edges
are ordered by (weight, smaller end, larger end), a strict total order, so ties cannot close a
cycle; they are many, since a point's mutual reachability to each of its near neighbours is its
own core distance. Components at least halve each round: at most log2(M) rounds.

Every minimum spanning tree has the same sorted weights, so the merge heights of the hierarchy are
hdbscan's; where several components join at one tied height, the order in which they join may
differ from hdbscan's tree, and with it the labels of the points that join there.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

# hdbscan's own hierarchy and cluster selection: private names, the same across its 0.8 releases
# (pyproject pins <0.9); tests/instances/test_spanning_tree.py checks the result against HDBSCAN
from hdbscan._hdbscan_linkage import label as single_linkage_tree
from hdbscan.hdbscan_ import _tree_to_labels
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

CHUNK_ENTRIES = 1 << 25
"""Distance-matrix entries computed at once (256 MiB in float64)."""

CACHE_BYTES = 2 << 30
"""The mutual reachability matrix is kept whole up to this size: 16,384 points in float64."""


def hdbscan_labels(points: np.ndarray, min_cluster_size: int, min_samples: int, device: torch.device) -> np.ndarray:
    """hdbscan.HDBSCAN(min_cluster_size, min_samples, "eom").fit(points).labels_ with its spanning
    tree computed on ``device``: (M, D) points -> (M,) int64 labels, -1 = noise."""
    # hdbscan caps min_samples the same way for small inputs
    tree = mutual_reachability_tree(points, max(min(len(points) - 1, min_samples), 1), device)
    tree = tree[np.argsort(tree[:, 2], kind="stable")]
    hierarchy = single_linkage_tree(tree)
    return np.asarray(_tree_to_labels(points, hierarchy, min_cluster_size)[0], dtype=np.int64)


def mutual_reachability_tree(points: np.ndarray, min_samples: int, device: torch.device) -> np.ndarray:
    """(M, D) finite points, M >= 2 -> (M - 1, 3) float64 edges (i, j, mutual reachability)."""
    x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float64)).to(device)
    count = len(x)
    rows = max(1, CHUNK_ENTRIES // count)
    reach = ReachabilityRows(x, core_distances(x, min_samples, rows), rows)
    component = np.arange(count)
    edges: list[np.ndarray] = []
    while True:
        weight, target = cheapest_edges(reach, torch.from_numpy(component).to(device))
        new_edges, component = _join_components(component, weight, target)
        edges.append(new_edges)
        if component.max() == 0:
            break
    tree = np.concatenate(edges)
    assert len(tree) == count - 1, "Borůvka must add exactly M - 1 edges"
    return tree


def core_distances(x: torch.Tensor, min_samples: int, rows: int) -> torch.Tensor:
    """(M, D) points -> (M,) distance to the ``min_samples``-th neighbour besides the point."""
    result = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), rows):
        distance = _distances(x[start : start + rows], x)
        # the point itself is the nearest (distance 0): neighbour k sits at sorted position k
        result[start : start + rows] = torch.topk(distance, min_samples + 1, dim=1, largest=False).values[:, -1]
    return result


class ReachabilityRows:
    """The (M, M) mutual reachability matrix a block of rows at a time: kept after the first pass
    when it fits in ``CACHE_BYTES`` (every Borůvka round reads it again), else recomputed."""

    def __init__(self, x: torch.Tensor, core: torch.Tensor, rows: int):
        self.x, self.core, self.rows = x, core, rows
        self.cache: list[torch.Tensor] | None = [] if len(x) ** 2 * x.element_size() <= CACHE_BYTES else None

    def __len__(self) -> int:
        return len(self.x)

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor]]:
        """Yields (first row, (R, M) block); blocks are read-only when cached."""
        for block, start in enumerate(range(0, len(self.x), self.rows)):
            if self.cache is not None and block < len(self.cache):
                yield start, self.cache[block]
                continue
            stop = min(start + self.rows, len(self.x))
            reach = _distances(self.x[start:stop], self.x)
            torch.maximum(reach, self.core[start:stop, None], out=reach)
            torch.maximum(reach, self.core[None], out=reach)
            if self.cache is not None:
                self.cache.append(reach)
            yield start, reach


def cheapest_edges(reach: ReachabilityRows, component: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per point, its cheapest mutual-reachability edge to a point of another component.

    Args:
        reach: the matrix's rows; component: (M,) int64 component per point, on its device.

    Returns:
        (M,) float64 weight (inf when the point's component is everything) and (M,) int64 target,
        the smallest index among the targets of that weight.
    """
    count = len(reach)
    weight = torch.empty(count, dtype=torch.float64, device=component.device)
    target = torch.empty(count, dtype=torch.int64, device=component.device)
    index = torch.arange(count, device=component.device)
    for start, block in reach:
        stop = start + len(block)
        other = torch.where(component[start:stop, None] == component[None], torch.inf, block)
        best = other.min(1).values
        weight[start:stop] = best
        # the first index of the minimum, stated here rather than left to a device's argmin
        target[start:stop] = torch.where(other == best[:, None], index, count).min(1).values
    return weight.cpu().numpy(), target.cpu().numpy()


def _join_components(component: np.ndarray, weight: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Borůvka round on the host: each component's cheapest edge by (weight, low end, high end).

    Returns (E, 3) float64 new edges (i, j, weight) and the (M,) components after joining,
    numbered 0..C-1 (all 0 once the tree spans every point).
    """
    source = np.arange(len(component))
    low, high = np.minimum(source, target), np.maximum(source, target)
    order = np.lexsort((high, low, weight, component))  # by component, then the edge order
    ordered = component[order]
    first = order[np.r_[True, ordered[1:] != ordered[:-1]]]
    # two components that pick each other pick the same edge: keep it once
    _, unique = np.unique(low[first] * len(component) + high[first], return_index=True)
    chosen = first[unique]
    edges = np.stack([low[chosen], high[chosen], weight[chosen]], axis=1).astype(np.float64)
    size = int(component.max()) + 1
    graph = coo_matrix((np.ones(len(chosen)), (component[low[chosen]], component[high[chosen]])), shape=(size, size))
    _, joined = connected_components(graph, directed=False)
    return edges, joined[component]


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(R, D), (M, D) -> (R, M) Euclidean distances, summed over the dimensions in order as hdbscan's
    kd-tree sums them (not |a|^2 + |b|^2 - 2ab, which leaves rounding where hdbscan's distances have
    none, e.g. a point to itself; and not torch.cdist's exact mode, whose CUDA kernel reduces each
    entry in a block of its own: slow for millions of entries)."""
    total = torch.zeros(len(a), len(b), dtype=a.dtype, device=a.device)
    for dim in range(a.shape[1]):
        difference = a[:, dim, None] - b[None, :, dim]
        total.addcmul_(difference, difference)
    return total.sqrt_()
