"""Assign every pixel to its nearest cluster centre with chunked matrix products (CPU or CUDA)."""

from __future__ import annotations

import numpy as np
import torch


def nearest_centre(
    vectors: np.ndarray | torch.Tensor,
    centres: np.ndarray,
    max_distance: float | None,
    device: torch.device,
    chunk_size: int,
) -> np.ndarray | torch.Tensor:
    """Index of the nearest centre for each vector, by Euclidean distance.

    Args:
        vectors: (N, D) float32, host array or a tensor already on ``device``.
        centres: (P, D) float32, P >= 1.
        max_distance: vectors farther than this from every centre get -1; None: no cut-off.
        device: where the distances are computed.
        chunk_size: vectors per step.

    Returns:
        (N,) int64 centre index in [0, P), or -1 for noise and for rows with NaN or inf: a host
        array for a host array, a tensor on ``device`` for a tensor.
    """
    centres_t = torch.from_numpy(np.ascontiguousarray(centres, dtype=np.float32)).to(device)
    centre_sq = (centres_t * centres_t).sum(1)
    limit = np.inf if max_distance is None else max_distance**2
    on_device = isinstance(vectors, torch.Tensor)
    result = (
        torch.empty(len(vectors), dtype=torch.int64, device=device) if on_device else np.empty(len(vectors), np.int64)
    )
    for start in range(0, len(vectors), chunk_size):
        if on_device:
            chunk = vectors[start : start + chunk_size]
        else:
            chunk = torch.from_numpy(np.ascontiguousarray(vectors[start : start + chunk_size], dtype=np.float32))
            chunk = chunk.to(device, non_blocking=True)
        # |x - c|^2 = |x|^2 + (|c|^2 - 2 x.c): the bracket, fused in one addmm, decides the argmin
        scores = torch.addmm(centre_sq, chunk, centres_t.T, alpha=-2)
        best, index = scores.min(1)
        best += (chunk * chunk).sum(1)
        index = torch.where(best <= limit, index, -1)  # NaN compares False, so non-finite rows become -1
        result[start : start + len(chunk)] = index if on_device else index.cpu().numpy()
    return result
