"""Repairing masks that still cover two instances after the association: votes of other frames per pixel.

A mask fusing two objects is rejected when most frames that see it separate the two; when few
frames see the second object, the mask joins the first object's instance whole. Then its pixels of
the second object are still seen by other frames, inside masks of that object's instance. Every
sampled pixel of the mask is reprojected (occlusion-aware, :mod:`iggt.curate.reprojection`) into
every other frame, and each frame that sees it votes for the instance there. A pixel *prefers*
another instance when at least ``min_votes`` frames vote for it and more than twice as many as for
its own. A mask where at least ``min_share`` of the voting pixels prefer another instance is split:
those pixels (and the unsampled ones in their stride x stride block) move to the instance they prefer.
"""

from __future__ import annotations

import numpy as np

from iggt.curate.reprojection import seen_again


def _votes(ids, depth, intrinsic, extrinsic, world, frame: int, stride: int, tolerance: float):
    """(P,) flat sampled pixels of ``frame`` with an instance and depth, and their (P, K + 1) votes."""
    sampled = ids[frame, ::stride, ::stride]
    valid = np.flatnonzero((sampled.reshape(-1) > 0) & (depth[frame, ::stride, ::stride].reshape(-1) > 0))
    points = world[frame, ::stride, ::stride].reshape(-1, 3)[valid]
    count = int(ids.max()) + 1
    votes = np.zeros(len(valid) * count, dtype=np.int64)
    for other in range(ids.shape[0]):
        if other == frame:
            continue
        kept, pixels = seen_again(points, depth[other], intrinsic[other], extrinsic[other], tolerance)
        votes += np.bincount(kept * count + ids[other].reshape(-1)[pixels], minlength=len(votes))
    votes = votes.reshape(len(valid), count)
    votes[:, 0] = 0
    return valid, votes


def split_mixed_masks(
    ids: np.ndarray,
    labels: np.ndarray,
    depth: np.ndarray,
    intrinsic: np.ndarray,
    extrinsic: np.ndarray,
    world: np.ndarray,
    stride: int,
    tolerance: float,
    min_share: float = 0.05,
    min_votes: int = 2,
    min_points: int = 8,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(S, H, W) instance IDs with mixed masks split, and the (frame, mask label) of each split mask.

    Args:
        ids: (S, H, W) instance IDs from the association; labels: (S, H, W) per-frame mask labels.
        depth, intrinsic, extrinsic, world: the capture's geometry and (S, H, W, 3) world points.
    """
    fixed = ids.copy()
    split = []
    height, width = ids.shape[1:]
    sample_rows, sample_width = len(range(0, height, stride)), len(range(0, width, stride))
    for frame in range(ids.shape[0]):
        valid, votes = _votes(ids, depth, intrinsic, extrinsic, world, frame, stride, tolerance)
        own = ids[frame, ::stride, ::stride].reshape(-1)[valid]
        best = votes.argmax(1)
        best_votes = votes[np.arange(len(valid)), best]
        prefers = (best != own) & (best_votes >= min_votes) & (best_votes > 2 * votes[np.arange(len(valid)), own])
        voting = votes.sum(1) > 0
        mask_of = labels[frame, ::stride, ::stride].reshape(-1)[valid]
        for label in np.unique(mask_of[prefers]):
            mine = mask_of == label
            movers = mine & prefers
            if movers.sum() < min_points or movers.sum() < min_share * (mine & voting).sum():
                continue
            split.append((frame, int(label)))
            decision = np.zeros(sample_rows * sample_width, dtype=fixed.dtype)
            decision[valid[movers]] = best[movers]
            # each sampled pixel decides for its stride x stride block, within this mask only
            block = np.repeat(np.repeat(decision.reshape(sample_rows, sample_width), stride, 0), stride, 1)
            block = block[:height, :width]
            moving = (labels[frame] == label) & (block > 0)
            fixed[frame][moving] = block[moving]
    return fixed, split
