"""Simulated segmenter and sensor failures, applied to exact ground truth (tests and benchmarks).

Real per-frame segmenters fail in a few typical ways; each is one probability per mask per frame:
cutting an object in two (``split``), fusing it with a touching neighbour (``merge``), missing it
(``drop``); and every frame numbers its masks independently (IDs are always shuffled). Sensors add
depth noise (relative, per pixel) and the pose estimate jitters (a random rotation and translation
per frame). A simulated video tracker gives masklets with identity switches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from iggt.curate.mask_files import FrameMasks, paint_masks


@dataclass(frozen=True)
class Degradation:
    """How badly the simulated segmenter and sensor behave."""

    split: float = 0.0
    """Probability that a mask is cut in two by a random line through its centroid."""
    merge: float = 0.0
    """Probability that a mask is fused with one touching neighbour."""
    drop: float = 0.0
    """Probability that a mask is missing."""
    depth_noise: float = 0.0
    """Standard deviation of multiplicative per-pixel depth noise (0.01 = 1%)."""
    rotation_deg: float = 0.0
    """Standard deviation of each axis of the per-frame pose rotation error, degrees."""
    translation_m: float = 0.0
    """Standard deviation of each axis of the per-frame pose translation error, metres."""


def _neighbours(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """IDs touching ``mask`` (4-neighbourhood), other than its own and 0."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    touching = np.unique(ids[grown & ~mask])
    return touching[touching > 0]


def _cut(mask: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    rows, columns = np.nonzero(mask)
    angle = rng.uniform(0, np.pi)
    side = (columns - columns.mean()) * np.cos(angle) + (rows - rows.mean()) * np.sin(angle) > 0
    halves = []
    for keep in (side, ~side):
        half = np.zeros_like(mask)
        half[rows[keep], columns[keep]] = True
        if half.any():
            halves.append(half)
    return halves


def degrade_masks(ids: np.ndarray, degradation: Degradation, rng: np.random.Generator) -> FrameMasks:
    """The masks a flawed segmenter might give for one frame whose exact IDs are ``ids`` (H, W)."""
    present = [int(i) for i in np.unique(ids) if i > 0]
    merged_into: dict[int, int] = {}
    for instance in rng.permutation(present):
        if instance in merged_into or rng.random() >= degradation.merge:
            continue
        options = [int(n) for n in _neighbours(ids, ids == instance) if n not in merged_into]
        if options:
            partner = options[rng.integers(len(options))]
            merged_into[partner] = merged_into[int(instance)] = int(instance)
    groups: dict[int, np.ndarray] = {}
    for instance in present:
        key = merged_into.get(instance, instance)
        groups[key] = groups.get(key, np.zeros(ids.shape, dtype=bool)) | (ids == instance)
    masks = []
    for mask in groups.values():
        if rng.random() < degradation.drop:
            continue
        masks.extend(_cut(mask, rng) if rng.random() < degradation.split else [mask])
    order = rng.permutation(len(masks))
    return paint_masks([masks[k] for k in order], [f"simulated mask {k + 1}" for k in range(len(masks))], ids.shape)


def degrade_geometry(
    depth: np.ndarray, extrinsic: np.ndarray, degradation: Degradation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(S, H, W) depth with relative noise and (S, 3, 4) camera-from-world poses with jitter."""
    noisy = depth * (1 + degradation.depth_noise * rng.standard_normal(depth.shape))
    noisy = np.where(depth > 0, np.maximum(noisy, 0), 0).astype(np.float32)
    rotation = Rotation.from_rotvec(np.deg2rad(degradation.rotation_deg) * rng.standard_normal((len(depth), 3)))
    error = rotation.as_matrix()
    jittered = np.concatenate(
        [
            error @ extrinsic[:, :, :3],
            error @ extrinsic[:, :, 3:] + degradation.translation_m * rng.standard_normal((len(depth), 3, 1)),
        ],
        axis=2,
    )
    return noisy, jittered.astype(np.float32)


def simulate_masklets(ids: np.ndarray, switch: float, drop: float, rng: np.random.Generator) -> list[FrameMasks]:
    """The masklets a flawed video tracker might give for (S, H, W) exact IDs: one track per object,
    except that with probability ``switch`` per object its track swaps IDs with another object's
    from a random frame on (an identity switch); each mask is missing with probability ``drop``."""
    present = [int(i) for i in np.unique(ids) if i > 0]
    track = [dict(zip(present, present, strict=True)) for _ in range(len(ids))]
    for instance in present:
        if len(present) > 1 and rng.random() < switch:
            other = int(rng.choice([p for p in present if p != instance]))
            for frame in range(int(rng.integers(1, max(len(ids), 2))), len(ids)):
                track[frame][instance], track[frame][other] = track[frame][other], track[frame][instance]
    result = []
    for frame, frame_ids in enumerate(ids):
        kept = [i for i in present if (frame_ids == i).any() and rng.random() >= drop]
        result.append(
            paint_masks(
                [frame_ids == i for i in kept],
                [f"simulated masklet {track[frame][i]}" for i in kept],
                frame_ids.shape,
                [track[frame][i] for i in kept],
            )
        )
    return result
