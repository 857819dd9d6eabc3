"""Instances of the windows of a long capture -> one :class:`Instances` with IDs kept over the
whole capture.

Each window is clustered on its own (:func:`iggt.instances.extract_instances`), so its IDs mean
nothing to the next window. Two passes tie them together:

1. Consecutive windows share frames: the same images, so pixel p of a shared frame is the same
   3D point in both windows. Instances are matched one-to-one (Hungarian,
   ``scipy.optimize.linear_sum_assignment``) by the IoU of their pixels in the shared frames,
   among pairs with IoU >= ``LINK_MIN_IOU`` whose mean features agree (cosine >=
   ``LINK_MIN_SIMILARITY``). A matched instance continues the earlier one's track.
2. An object that leaves the view for longer than a window comes back in a window that shares no
   frame with the ones that saw it, as a new track. A final pass over the whole capture merges a
   track into an earlier one when the earlier ended before the later began (never both in one
   frame), their mean features agree (cosine >= ``RETURN_MIN_SIMILARITY``, stricter: no shared
   pixels vouch for them) and their 3D boxes in the world frame are at most ``RETURN_MAX_GAP``
   times the mean of their box diagonals apart (0 when they overlap: two views of one object may
   show different parts of it, so their centroids may differ, their boxes touch); again
   one-to-one by Hungarian, preferring similar features and small gaps.

Tracks are numbered 1..K in the order they first appear (frame, then size in that frame), so an
object seen again keeps the ID it had when first seen; 0 = no instance, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from iggt.instances.lifting import lift_instances
from iggt.structures import Instances

LINK_MIN_IOU = 0.3
"""Least IoU, over the shared frames, of two consecutive windows' instances taken as one object."""
LINK_MIN_SIMILARITY = 0.5
"""Least cosine between their mean features (windows are separate network runs, so features drift a little)."""
RETURN_MIN_SIMILARITY = 0.75
"""Least cosine between the mean features of a track and the earlier track it continues after a gap."""
RETURN_MAX_GAP = 0.25
"""Most distance between their 3D boxes, in units of the mean of their two box diagonals."""


@dataclass(frozen=True)
class WindowInstances:
    """The instances of one window.

    Attributes:
        frames: the capture's frames the window holds.
        labels: (len(frames), H, W) int window-local instance IDs, 0 = none.
        ids: (N,) int the IDs present, ascending.
        mean_features: (N, C) float unit-norm mean feature per ID.
    """

    frames: range
    labels: np.ndarray
    ids: np.ndarray
    mean_features: np.ndarray


def link_consecutive(earlier: WindowInstances, later: WindowInstances) -> dict[int, int]:
    """{later ID: earlier ID} for the instances two overlapping windows share (see the module doc)."""
    shared = range(later.frames.start, earlier.frames.stop)
    if len(shared) == 0 or len(earlier.ids) == 0 or len(later.ids) == 0:
        return {}
    a = earlier.labels[shared.start - earlier.frames.start :].reshape(-1)
    b = later.labels[: len(shared)].reshape(-1)
    rows, columns = np.searchsorted(earlier.ids, a) + 1, np.searchsorted(later.ids, b) + 1
    rows[a == 0], columns[b == 0] = 0, 0  # row/column 0 = no instance
    table = np.bincount(rows * (len(later.ids) + 1) + columns, minlength=(len(earlier.ids) + 1) * (len(later.ids) + 1))
    table = table.reshape(len(earlier.ids) + 1, len(later.ids) + 1)
    intersection = table[1:, 1:]
    union = table[1:].sum(1)[:, None] + table[:, 1:].sum(0)[None] - intersection
    iou = intersection / np.maximum(union, 1)
    similarity = earlier.mean_features @ later.mean_features.T
    allowed = (iou >= LINK_MIN_IOU) & (similarity >= LINK_MIN_SIMILARITY)
    return {
        int(later.ids[j]): int(earlier.ids[i])
        for i, j in zip(*linear_sum_assignment(np.where(allowed, -iou, 1.0)), strict=True)
        if allowed[i, j]
    }


class TrackLabels:
    """Labels of a capture's tracks, written window by window: besides the capture's labels (the
    result) only the last window's instances are held, whatever the capture's length.

    Attributes:
        labels: (S, H, W) int32 track numbers, 0 = none; filled by :meth:`add`.
    """

    def __init__(self, shape: tuple[int, int, int], labels: np.ndarray | None = None):
        """``labels``: an all-zero (S, H, W) int32 array to write into (e.g. a memory map on disk);
        None: one is made in memory."""
        self.labels = np.zeros(shape, np.int32) if labels is None else labels
        self._previous: WindowInstances | None = None
        self._previous_tracks = np.zeros(0, np.int32)
        self._next_track = 1

    def add(self, window: WindowInstances, owned: np.ndarray) -> None:
        """Continue the tracks with ``window`` (the next one, overlapping the last added) and write
        its labels of the capture's frames ``owned`` (those the result takes from it)."""
        links = link_consecutive(self._previous, window) if self._previous is not None else {}
        earlier = dict(zip(self._previous.ids.tolist(), self._previous_tracks.tolist(), strict=True)) if links else {}
        tracks = np.zeros(len(window.ids), np.int32)
        for index, local in enumerate(window.ids.tolist()):
            if local in links:
                tracks[index] = earlier[links[local]]
            else:
                tracks[index], self._next_track = self._next_track, self._next_track + 1
        lookup = np.zeros(int(window.ids.max(initial=0)) + 1, np.int32)
        lookup[window.ids] = tracks
        self.labels[owned] = lookup[window.labels[owned - window.frames.start]]
        self._previous, self._previous_tracks = window, tracks

    def finish(
        self,
        points: np.ndarray,
        confidence: np.ndarray,
        features: np.ndarray,
        box_percentile: float = 2.0,
        device: torch.device | None = None,
    ) -> Instances:
        """The capture's instances: returning tracks merged, numbered by first sight (see the module
        doc); ``device``: where the capture's table is computed (:func:`lift_instances`)."""
        self._previous = None
        return merge_tracks(self.labels, points, confidence, features, box_percentile, device)


def link_windows(
    windows: list[WindowInstances],
    owner: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    features: np.ndarray,
    box_percentile: float = 2.0,
) -> Instances:
    """One :class:`Instances` for the whole capture from its windows' instances.

    Args:
        windows: the windows in order; consecutive ones overlap.
        owner: (S,) index of the window each frame's labels are taken from.
        points: (S, H, W, 3) world points of the merged capture; confidence: (S, H, W);
        features: (S, H, W, C) instance features (what the final table summarises).
        box_percentile: as in :func:`iggt.instances.lift_instances`.
    """
    tracks = TrackLabels(points.shape[:3])
    for index, window in enumerate(windows):
        tracks.add(window, np.flatnonzero(owner == index))
    return tracks.finish(points, confidence, features, box_percentile)


def merge_tracks(
    labels: np.ndarray,
    points: np.ndarray,
    confidence: np.ndarray,
    features: np.ndarray,
    box_percentile: float = 2.0,
    device: torch.device | None = None,
) -> Instances:
    """(S, H, W) int32 track labels -> the capture's :class:`Instances`, returning tracks merged
    into their first track and IDs numbered by first sight. ``labels`` is relabelled in place, a
    view at a time, and becomes the result's: no second label map of the capture is made (it may
    be a memory map on disk). ``device``: as in :func:`lift_instances`."""
    summary = lift_instances(labels, points, confidence, features, box_percentile, device)
    if len(summary.ids) == 0:
        return summary
    merged, track = np.unique(_merge_returning(summary), return_inverse=True)
    counts = np.zeros((len(merged), labels.shape[0]), np.int64)
    np.add.at(counts, track, summary.pixel_counts)
    lookup = np.zeros(int(summary.ids.max()) + 1, np.int32)
    lookup[summary.ids] = _first_sight_numbers(counts)[track]
    for view in range(labels.shape[0]):
        labels[view] = lookup[labels[view]]
    return lift_instances(labels, points, confidence, features, box_percentile, device)


def _merge_returning(summary: Instances) -> np.ndarray:
    """(K,) the track each of ``summary``'s tracks is merged into (itself when none): the returns."""
    visible = summary.pixel_counts > 0
    first = visible.argmax(1)
    last = visible.shape[1] - 1 - visible[:, ::-1].argmax(1)
    diagonal = np.linalg.norm(summary.bbox_max - summary.bbox_min, axis=1)
    low = np.maximum(summary.bbox_min[:, None], summary.bbox_min[None])
    high = np.minimum(summary.bbox_max[:, None], summary.bbox_max[None])
    gap = np.linalg.norm(np.clip(low - high, 0, None), axis=-1)
    reach = RETURN_MAX_GAP * (diagonal[:, None] + diagonal[None]) / 2
    similarity = summary.mean_features @ summary.mean_features.T
    # rows: earlier tracks, columns: later ones; NaN geometry (no finite point) never merges
    allowed = (last[:, None] < first[None]) & (similarity >= RETURN_MIN_SIMILARITY) & (gap <= reach)
    score = similarity - np.where(allowed, gap / np.maximum(reach, 1e-12), 1)
    parent = np.arange(len(summary.ids))
    for earlier, later in zip(*linear_sum_assignment(np.where(allowed, -score, 1.0)), strict=True):
        if allowed[earlier, later]:
            parent[later] = earlier
    for index in range(len(parent)):  # a chain (left, came back, left again, ...) ends at its first track
        while parent[parent[index]] != parent[index]:
            parent[index] = parent[parent[index]]
    return summary.ids[parent]


def _first_sight_numbers(counts: np.ndarray) -> np.ndarray:
    """(K, S) pixels of each track in each view -> (K,) its number 1..K: by the first view it is
    seen in, then by its size in that view."""
    first = (counts > 0).argmax(1)
    order = np.lexsort((-counts[np.arange(len(counts)), first], first))
    numbers = np.empty(len(counts), np.int32)
    numbers[order] = np.arange(1, len(counts) + 1)
    return numbers
