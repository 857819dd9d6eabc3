"""The majority filter of :mod:`iggt.instances.majority` in torch, a chunk of views at a time.

The same vote as the NumPy path, so the labels are the same bit for bit: each of the window's
(2r+1)^2 positions gets the number of positions holding its label (outside pixels, -1, get none);
the winner is the position with most votes, the first in the window among equals (NumPy's argmax),
and a pixel keeps its own label when its own votes reach the winner's.
"""

from __future__ import annotations

import numpy as np
import torch

from iggt.instances.lifting import view_chunks
from iggt.instances.transfer import to_device


def majority_filter_torch(labels: np.ndarray, radius: int, device: torch.device) -> np.ndarray:
    """(S, H, W) int labels (may be a memory map) -> (S, H, W) filtered labels of the same dtype,
    filtered on ``device`` a chunk of views (:func:`view_chunks`) at a time; ``radius`` >= 1."""
    # a signed type that holds the labels and the -1 of outside pixels, as the NumPy path
    work = np.result_type(labels.dtype, np.int8)
    result = np.empty(labels.shape, labels.dtype)
    for views in view_chunks(labels.shape):
        chunk = to_device(labels[views], device, work)
        result[views] = _filter_views(chunk, radius).cpu().numpy().astype(labels.dtype, copy=False)
    return result


def _filter_views(labels: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, H, W) labels on a device -> (B, H, W) filtered labels."""
    views, height, width = labels.shape
    padded = labels.new_full((views, height + 2 * radius, width + 2 * radius), -1)
    padded[:, radius : radius + height, radius : radius + width] = labels
    size = 2 * radius + 1
    window = torch.stack([padded[:, dy : dy + height, dx : dx + width] for dy in range(size) for dx in range(size)])
    positions = len(window)
    # votes * positions + (positions - 1 - k): one max finds the most votes and, among equals,
    # the first position k, without relying on which index a device's argmax returns for ties
    best = torch.full(labels.shape, -1, dtype=torch.int64, device=labels.device)
    for k, other in enumerate(window):
        votes = (window == other).sum(0)
        votes.masked_fill_(other < 0, 0)
        torch.maximum(best, votes * positions + (positions - 1 - k), out=best)
        if k == positions // 2:  # the centre: the pixel itself
            own_votes = votes
    winner = torch.gather(window, 0, (positions - 1 - best % positions)[None])[0]
    return torch.where(own_votes >= best // positions, labels, winner)
