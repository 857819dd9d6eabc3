"""Speckle removal on label maps: each pixel takes the most common label of its window."""

from __future__ import annotations

import numpy as np
import torch

from iggt.instances.majority_torch import majority_filter_torch
from iggt.instances.parallel import map_threads


def majority_filter(labels: np.ndarray, radius: int, device: torch.device | None = None) -> np.ndarray:
    """(S, H, W) int labels -> (S, H, W) labels after a per-view (2r+1) x (2r+1) majority vote.

    A pixel keeps its own label when that label ties for most common; the window is clipped at
    the image border. Unlike averaging features, this never invents labels at object boundaries.
    ``device``: None filters the views in NumPy on host threads; a torch device filters them there,
    a few views at a time (:mod:`iggt.instances.majority_torch`), with the same result.
    """
    if radius == 0:
        return labels
    if device is not None:
        return majority_filter_torch(labels, radius, device)
    return np.stack(map_threads(lambda view: _filter_view(view, radius), labels))


def _filter_view(labels: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) labels -> (H, W) filtered labels."""
    height, width = labels.shape
    # A signed type that holds the labels and the -1 of outside pixels; the votes (at most the
    # window's size) in the smallest type that holds them: the vote loop is memory-bound.
    padded = np.pad(labels.astype(np.result_type(labels.dtype, np.int8)), radius, constant_values=-1)
    size = 2 * radius + 1
    window = np.stack([padded[dy : dy + height, dx : dx + width] for dy in range(size) for dx in range(size)])
    votes = np.zeros(window.shape, dtype=np.min_scalar_type(size * size))
    for other in window:
        votes += window == other
    votes[window < 0] = 0
    own_votes = votes[len(window) // 2]
    best = np.take_along_axis(window, votes.argmax(0)[None], 0)[0]
    return np.where(own_votes >= votes.max(0), labels, best).astype(labels.dtype)
