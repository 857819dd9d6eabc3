"""Per-frame masks -> scene-level instances by multi-view consensus (path A's core).

Every mask is lifted through depth and pose and reprojected into every other frame
(:mod:`iggt.curate.reprojection`, occlusion-aware). There, frame k *judges* mask m:

- **contained** by mask c of frame k: at least ``min_points`` sampled points of m are seen in k, at
  least ``min_labelled`` of them land on some mask of k, and at least ``containment`` of those on c;
- **split**: seen and labelled, but spread over several masks of k (m covers more than one thing k
  separates, or k cut it in pieces);
- **silent**: not seen, or seen where k has no mask (k's segmenter missed it); no evidence.

A mask is contained by itself in its own frame. Two masks are *together* in a frame that finds both
contained by the same mask and *apart* in one that finds both contained by different masks
(a frame never judges two masks of its own). Masks of one masklet (a video segmenter's track) get
``masklet_prior`` frames of "together" on top, so the track links them unless frames that see
them apart outweigh it. Then:

1. a mask split in more than ``max_split_fraction`` of the frames that judge it (and in at least
   ``min_split_frames``) is **under-segmented** (e.g. two neighbours merged) and rejected;
2. the rest are merged greedily, most consistent pair of clusters first, while the clusters' summed
   together / (together + apart) is at least ``merge_threshold`` (fragments of one object merge,
   since other frames see them inside one mask; neighbours stay apart, since most frames separate them);
3. a mask more often apart from the rest of its instance than together with it is rejected as
   **inconsistent**;
4. pixels of a kept mask that other frames see inside another instance move there
   (:mod:`iggt.curate.pixel_votes`: a fused mask whose second object few frames see).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from iggt.curate.reprojection import seen_again

SILENT, SPLIT = -1, -2


@dataclass(frozen=True)
class AssociationConfig:
    """Thresholds of the association (every one stated; the defaults are used by `iggt curate`)."""

    stride: int = 2
    """Sample every stride-th pixel along rows and columns when lifting masks (speed)."""
    depth_tolerance: float = 0.05
    """Largest relative depth difference of a reprojected point still seen (occlusion test)."""
    min_points: int = 8
    """Sampled points of a mask another frame must see for it to judge the mask."""
    min_labelled: float = 0.5
    """Fraction of those points that must land on some mask there, else that frame is silent."""
    containment: float = 0.85
    """Fraction of the labelled points inside one mask for "contained", else "split"."""
    max_split_fraction: float = 0.5
    """A mask split in more than this fraction of the frames judging it is under-segmented..."""
    min_split_frames: int = 2
    """...when it is split in at least this many frames."""
    merge_threshold: float = 0.6
    """Least together / (together + apart) of two clusters that are merged."""
    min_mask_pixels: int = 16
    """Masks with fewer pixels are rejected as too small."""
    pixel_repair: bool = True
    """Run the pixel repair (:mod:`iggt.curate.pixel_votes`) after the association."""
    repair_votes: int = 2
    """Frames that must see a pixel inside another instance for it to move there
    (:mod:`iggt.curate.pixel_votes`), with more than twice the votes of its own instance..."""
    repair_share: float = 0.05
    """...in a mask where at least this fraction of the voting pixels would move (else none moves)."""
    masklet_prior: float = 2.0
    """Frames' worth of "together" evidence given to every pair of masks of one masklet (a video
    segmenter's track, e.g. SA-V ``masklet_id``) in different frames, and of "apart" evidence to
    every pair of masks of two masklets that appear in one frame: the tracker's links hold unless
    the frames that see the masks apart outweigh them (a tracker that jumped to another object),
    and its separations hold unless the frames that see them together do."""


@dataclass
class MaskIndex:
    """Every mask of a capture, numbered 0..N-1 frame by frame.

    Attributes:
        frame: (N,) the frame of each mask; label: (N,) its label in that frame's label map.
        offsets: (S + 1,) the masks of frame s are offsets[s]..offsets[s + 1] - 1.
        pixels: (N,) pixel count; points: (N,) sampled pixels with valid depth.
    """

    frame: np.ndarray
    label: np.ndarray
    offsets: np.ndarray
    pixels: np.ndarray
    points: np.ndarray

    @classmethod
    def build(cls, labels: np.ndarray, depth: np.ndarray, counts: list[int], stride: int) -> MaskIndex:
        """From (S, H, W) label maps, (S, H, W) depth and each frame's mask count."""
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        frame = np.repeat(np.arange(len(counts)), counts)
        label = np.concatenate([np.arange(1, c + 1) for c in counts]) if offsets[-1] else np.zeros(0, np.int64)
        pixels, points = np.zeros(offsets[-1], np.int64), np.zeros(offsets[-1], np.int64)
        for s, count in enumerate(counts):
            pixels[offsets[s] : offsets[s + 1]] = np.bincount(labels[s].reshape(-1), minlength=count + 1)[1:]
            sampled = np.where(depth[s, ::stride, ::stride] > 0, labels[s, ::stride, ::stride], 0)
            points[offsets[s] : offsets[s + 1]] = np.bincount(sampled.reshape(-1), minlength=count + 1)[1:]
        return cls(frame, label, offsets, pixels, points)

    @property
    def count(self) -> int:
        return int(self.offsets[-1])


def judge(
    labels: np.ndarray,
    depth: np.ndarray,
    intrinsic: np.ndarray,
    extrinsic: np.ndarray,
    world: np.ndarray,
    index: MaskIndex,
    config: AssociationConfig,
    on_frame: Callable[[], None] = lambda: None,
) -> np.ndarray:
    """(N, S) verdict of frame k on mask m: the index of the containing mask, SPLIT or SILENT.

    Args:
        labels: (S, H, W) int label maps; depth: (S, H, W); intrinsic (S, 3, 3); extrinsic (S, 3, 4).
        world: (S, H, W, 3) world points of every pixel.
    """
    num_frames = labels.shape[0]
    verdict = np.full((index.count, num_frames), SILENT, dtype=np.int64)
    verdict[np.arange(index.count), index.frame] = np.arange(index.count)
    step = config.stride
    for source in range(num_frames):
        sampled_labels = labels[source, ::step, ::step].reshape(-1)
        usable = np.flatnonzero((depth[source, ::step, ::step].reshape(-1) > 0) & (sampled_labels > 0))
        points = world[source, ::step, ::step].reshape(-1, 3)[usable]
        source_count = index.offsets[source + 1] - index.offsets[source]
        for target in range(num_frames):
            if target == source or source_count == 0:
                continue
            kept, pixels = seen_again(
                points, depth[target], intrinsic[target], extrinsic[target], config.depth_tolerance
            )
            target_count = index.offsets[target + 1] - index.offsets[target]
            joint = np.bincount(
                sampled_labels[usable[kept]] * (target_count + 1) + labels[target].reshape(-1)[pixels],
                minlength=(source_count + 1) * (target_count + 1),
            ).reshape(source_count + 1, target_count + 1)[1:]
            verdict[index.offsets[source] : index.offsets[source + 1], target] = _verdicts(
                joint, index.offsets[target], config
            )
        on_frame()
    return verdict


def _verdicts(joint: np.ndarray, target_offset: int, config: AssociationConfig) -> np.ndarray:
    """(M_source, M_target + 1) counts of seen points (column 0: no mask) -> one verdict per source mask."""
    seen = joint.sum(1)
    labelled = joint[:, 1:].sum(1)
    best = joint[:, 1:].argmax(1) if joint.shape[1] > 1 else np.zeros(len(joint), np.int64)
    best_count = joint[np.arange(len(joint)), best + 1] if joint.shape[1] > 1 else np.zeros(len(joint))
    judged = (seen >= config.min_points) & (labelled >= config.min_labelled * np.maximum(seen, 1))
    contained = judged & (best_count >= config.containment * np.maximum(labelled, 1))
    return np.where(contained, target_offset + best, np.where(judged, SPLIT, SILENT))


def pair_evidence(verdict: np.ndarray, index: MaskIndex) -> tuple[np.ndarray, np.ndarray]:
    """(N, N) together and apart counts: frames finding both masks in one mask, or in different ones."""
    count = index.count
    together = np.zeros((count, count), dtype=np.float64)
    apart = np.zeros((count, count), dtype=np.float64)
    for frame in range(verdict.shape[1]):
        judged = np.flatnonzero(verdict[:, frame] >= 0)
        one_hot = np.zeros((len(judged), count), dtype=np.float64)
        one_hot[np.arange(len(judged)), verdict[judged, frame]] = 1
        same = one_hot @ one_hot.T
        together[np.ix_(judged, judged)] += same
        apart[np.ix_(judged, judged)] += 1 - same
    own_frame = index.frame[:, None] == index.frame[None, :]
    apart[own_frame] -= 1  # each frame's own masks are "contained by themselves": no verdict on each other
    np.fill_diagonal(together, 0)
    np.fill_diagonal(apart, 0)
    return together, apart


def masklet_links(tracks: np.ndarray, index: MaskIndex) -> tuple[np.ndarray, np.ndarray]:
    """(N, N) linked and separated pairs from (N,) tracks (-1 = none): 1 for masks of one masklet in
    different frames (the tracker says: one object), and for masks of two masklets that share a
    frame (the tracker says: two objects, since it told them apart there)."""
    tracked = tracks >= 0
    other_frame = index.frame[:, None] != index.frame[None, :]
    linked = (tracks[:, None] == tracks[None, :]) & tracked[:, None] & other_frame
    names, track_row = np.unique(tracks[tracked], return_inverse=True)
    present = np.zeros((len(names), len(index.offsets) - 1), dtype=np.float64)
    present[track_row, index.frame[tracked]] = 1
    distinct = (present @ present.T) > 0
    np.fill_diagonal(distinct, False)
    separated = np.zeros(linked.shape, dtype=bool)
    separated[np.ix_(tracked, tracked)] = distinct[track_row[:, None], track_row[None, :]]
    return linked.astype(np.float64), separated.astype(np.float64)


def under_segmented(verdict: np.ndarray, index: MaskIndex, config: AssociationConfig) -> np.ndarray:
    """(N,) bool: split in too many of the other frames that judge it."""
    others = np.ones_like(verdict, dtype=bool)
    others[np.arange(index.count), index.frame] = False
    split = ((verdict == SPLIT) & others).sum(1)
    judged = (((verdict >= 0) | (verdict == SPLIT)) & others).sum(1)
    return (split >= config.min_split_frames) & (split > config.max_split_fraction * np.maximum(judged, 1))


def agglomerate(together: np.ndarray, apart: np.ndarray, active: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) cluster representative of each active mask (-1 for inactive), merging greedily.

    The pair of clusters with the highest summed together / (together + apart) merges first (ties:
    more evidence first), while that ratio is at least ``threshold``.
    """
    together, apart = together.copy(), apart.copy()
    alive = active.copy()
    owner = np.where(active, np.arange(len(active)), -1)
    while True:
        total = together + apart
        score = np.where(total > 0, together / np.maximum(total, 1e-12), -1.0)
        score[~alive] = -1
        score[:, ~alive] = -1
        np.fill_diagonal(score, -1)
        key = score + 1e-6 * together / max(together.max(), 1.0)
        keep, gone = np.unravel_index(int(np.argmax(key)), key.shape)
        if score[keep, gone] < threshold or score[keep, gone] <= 0:
            return owner
        for matrix in (together, apart):
            matrix[keep] += matrix[gone]
            matrix[:, keep] += matrix[:, gone]
            matrix[keep, keep] = 0
        alive[gone] = False
        owner[owner == gone] = keep


def inconsistent_members(owner: np.ndarray, together: np.ndarray, apart: np.ndarray) -> np.ndarray:
    """(N,) bool: masks more often apart from the other masks of their cluster than together."""
    same = (owner[:, None] == owner[None, :]) & (owner[:, None] >= 0)
    np.fill_diagonal(same, False)
    return (apart * same).sum(1) > (together * same).sum(1)
