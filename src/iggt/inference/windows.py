"""Long captures in windows: which frames each window holds, how a window is aligned to the
world of the capture, and how aligned windows merge into one :class:`Predictions`.

A capture of S frames is cut into windows of ``window`` frames, consecutive windows sharing
``overlap`` frames (the last window is moved back so that it is full, sharing more). The network
sees one window at a time, so memory is bounded by the window, not by the capture. Each window
comes out in its own frame (its first camera) at its own scale; the shared frames are the same
images seen by both windows, so pixel p of shared frame f is one 3D point in both, and a robust
Sim(3) fit on those point pairs (:func:`iggt.geometry.similarity.robust_umeyama`, weighted by
confidence) maps the window into the world of the previous one. The world is the first window's,
i.e. the first camera of the capture. Every frame is then taken from the window in which it lies
nearest to the centre (the middle of each overlap is where one window hands over to the next).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from iggt.errors import InputError
from iggt.geometry.pose_encoding import cameras_to_pose_encoding
from iggt.geometry.similarity import Similarity, robust_umeyama
from iggt.instances.points import confident_pixels
from iggt.structures.predictions import Predictions

DEFAULT_OVERLAP = 4
"""Frames shared by consecutive windows unless the caller says otherwise."""
MIN_OVERLAP = 2
"""Fewest frames consecutive windows share: one frame ties the windows through a single view's
point map, which a wrong depth in that view bends; two views also fix the relative camera."""
AGREEMENT = 0.2
"""A point pair agrees with a window's fit when, after it, the two points lie closer than this
fraction of the pixel's depth in the previous window. iggt-small on engine walks (windows of 16
sharing 4): 43-85 % of the pairs agree; the same pairs shuffled (no correspondence): 6-20 %."""
MIN_INLIER_POINTS = 100
"""Fewest point pairs that must agree with the fit of a window to the previous one."""
MIN_INLIER_FRACTION = 0.3
"""Fewest of the confident point pairs that must agree with it: below this the shared frames do
not tie the two windows together (different content, or a broken prediction)."""
FIT_CONFIDENCE_QUANTILE = 0.2
"""The least confident fraction of the shared pixels (sky, edges, flying pixels) is left out of the fit."""
FIT_SAMPLE = 100_000
"""Most point pairs used for one fit (an even subset; more do not change a 7-parameter fit)."""


@dataclass(frozen=True)
class WindowPlan:
    """Windows over a capture of ``num_frames`` frames.

    Attributes:
        num_frames: S, frames of the capture.
        windows: the frame ranges of the windows, in order; consecutive ones overlap.
        owner: (S,) int index of the window each frame of the merged result is taken from.
    """

    num_frames: int
    windows: tuple[range, ...]
    owner: np.ndarray

    def shared(self, index: int) -> range:
        """The frames window ``index`` shares with window ``index - 1``."""
        return range(self.windows[index].start, self.windows[index - 1].stop)

    def owned(self, index: int) -> np.ndarray:
        """Indices, local to window ``index``, of the frames the merged result takes from it."""
        return np.flatnonzero(self.owner == index) - self.windows[index].start

    def describe(self) -> str:
        """One line for the log and the notes, e.g. ``3 windows of 8 frames (overlap 2): 0-7, 6-13, 12-19``."""
        spans = ", ".join(f"{w.start}-{w.stop - 1}" for w in self.windows)
        overlaps = sorted({len(self.shared(i)) for i in range(1, len(self.windows))})
        shared = "/".join(map(str, overlaps)) or "0"
        return f"{len(self.windows)} windows of {len(self.windows[0])} frames (overlap {shared}): frames {spans}"


SPELLINGS = {"overlap=": "overlap", "window=": "window"}
"""Option texts of the messages below, for the interfaces' own spellings (``IGGTError.options``)."""


def check_window(window: int, overlap: int) -> None:
    """InputError naming the bad value unless MIN_OVERLAP <= overlap < window."""
    if overlap < MIN_OVERLAP:
        raise InputError(
            f"overlap={overlap} is below the minimum of {MIN_OVERLAP} frames that consecutive windows must "
            f"share to be aligned; use overlap={MIN_OVERLAP} or more",
            SPELLINGS,
        )
    if window <= overlap:
        raise InputError(
            f"window={window} must be larger than overlap={overlap} (each window must add new frames); "
            f"use window={overlap + MIN_OVERLAP} or more",
            SPELLINGS,
        )


def plan_windows(num_frames: int, window: int, overlap: int) -> WindowPlan:
    """Windows of ``window`` frames stepping by ``window - overlap``; one window when S <= window."""
    check_window(window, overlap)
    if num_frames <= window:
        return WindowPlan(num_frames, (range(num_frames),), np.zeros(num_frames, int))
    step = window - overlap
    starts = list(range(0, num_frames - window, step)) + [num_frames - window]
    windows = tuple(range(start, start + window) for start in starts)
    first = np.array(starts)
    frames = np.arange(num_frames)[:, None]
    inside = (frames >= first) & (frames < first + window)
    distance = np.where(inside, np.abs(frames - (first + (window - 1) / 2)), np.inf)
    return WindowPlan(num_frames, windows, distance.argmin(1))


@dataclass(frozen=True)
class WindowFit:
    """The fit of a window to the previous one (see :func:`fit_shared`).

    Attributes:
        similarity: the robust Sim(3) from the window's frame to the world; None when the shared
            frames hold too few confident point pairs to fit one.
        agreeing: point pairs that agree with it (:data:`AGREEMENT`).
        pairs: confident point pairs of the shared frames.
        needed: agreeing pairs needed for the fit to tie the windows (:data:`MIN_INLIER_POINTS`,
            :data:`MIN_INLIER_FRACTION`).
    """

    similarity: Similarity | None
    agreeing: int
    pairs: int
    needed: int

    @property
    def confirmed(self) -> bool:
        return self.similarity is not None and self.agreeing >= self.needed

    def shortfall(self, label: str, shared: int) -> str:
        """What was wrong, naming the windows by ``label``."""
        return (
            f"{label} share {shared} frames but only {self.agreeing} of {self.pairs} confident point pairs agree on "
            f"one Sim(3) (at least {self.needed} needed)"
        )

    def disagreement(self, label: str, shared: int) -> str:
        """What was wrong and what to do."""
        return (
            f"{self.shortfall(label, shared)}: the overlap does not tie them together; use a larger "
            f"overlap={shared + 1} or sample frames closer together"
        )


def fit_shared(previous: Predictions, current: Predictions, shared: int) -> WindowFit:
    """The Sim(3) mapping ``current``'s frame onto ``previous``'s world, from their shared frames.

    Args:
        previous: the previous window, already in the world frame; its last ``shared`` views
            are ``current``'s first ``shared`` views.
        current: this window in its own frame.
        shared: number of shared views.
    """
    target = previous.world_points[-shared:].reshape(-1, 3)
    source = current.world_points[:shared].reshape(-1, 3)
    depth = previous.depth[-shared:].reshape(-1)
    confidence = np.minimum(previous.world_points_conf[-shared:], current.world_points_conf[:shared]).reshape(-1)
    valid = np.isfinite(target).all(1) & np.isfinite(source).all(1) & np.isfinite(confidence) & (depth > 0)
    chosen = np.flatnonzero(confident_pixels(confidence, valid, FIT_CONFIDENCE_QUANTILE))
    chosen = chosen[:: -(-len(chosen) // FIT_SAMPLE)] if len(chosen) else chosen
    needed = max(MIN_INLIER_POINTS, int(np.ceil(MIN_INLIER_FRACTION * len(chosen))))
    if len(chosen) < MIN_INLIER_POINTS:
        return WindowFit(None, 0, len(chosen), needed)
    source, target = source[chosen], target[chosen]
    fit = robust_umeyama(source, target, np.clip(confidence[chosen], 1e-6, None))
    if not fit.similarity.scale > 0:
        return WindowFit(None, 0, len(chosen), needed)
    residual = np.linalg.norm(fit.similarity.apply(source) - target, axis=1)
    return WindowFit(fit.similarity, int((residual <= AGREEMENT * depth[chosen]).sum()), len(chosen), needed)


def fit_to_previous(previous: Predictions, current: Predictions, shared: int, label: str) -> tuple[Similarity, int]:
    """:func:`fit_shared`, confirmed: the fit and its agreeing pairs, or InputError naming the
    windows by ``label`` ("windows 2 and 3 (frames 12-19 and 18-25)") when the shared frames do not
    tie them (fewer than :data:`MIN_INLIER_POINTS` or :data:`MIN_INLIER_FRACTION` agree)."""
    fit = fit_shared(previous, current, shared)
    if not fit.confirmed:
        raise InputError(fit.disagreement(label, shared), SPELLINGS)
    return fit.similarity, fit.agreeing


def to_world(predictions: Predictions, similarity: Similarity) -> Predictions:
    """A window's predictions moved into the world: cameras, points, and depth in the world's scale
    (confidences, intrinsics and features unchanged)."""
    extrinsic = similarity.apply_to_extrinsic(predictions.extrinsic)
    pose_enc = cameras_to_pose_encoding(
        torch.from_numpy(extrinsic), torch.from_numpy(predictions.intrinsic).double(), predictions.image_size
    )
    return replace(
        predictions,
        extrinsic=extrinsic.astype(np.float32),
        depth=(predictions.depth * similarity.scale).astype(np.float32),
        world_points=_moved_points(predictions.world_points, similarity),
        pose_enc=pose_enc.numpy().astype(np.float32),
    )


def _moved_points(points: np.ndarray, similarity: Similarity) -> np.ndarray:
    """(..., 3) float32 points -> float32 ``similarity.apply(points)``, computed in float32 (the
    result's precision; a window's millions of points in float64 cost ten times as long)."""
    matrix = (similarity.scale * similarity.rotation.T).astype(np.float32)
    moved = np.matmul(np.asarray(points, np.float32), matrix)
    moved += similarity.translation.astype(np.float32)
    return moved


def check_store(store: str | Path) -> Path:
    """``store`` as a Path, created if missing; InputError unless it is an empty folder (the run
    writes its result there, and files of another run would be overwritten or mixed with it)."""
    store = Path(store)
    if store.exists() and not store.is_dir():
        raise InputError(f"store={store} is a file; give an empty or new folder for the result", {"store=": "store"})
    if store.is_dir() and any(store.iterdir()):
        raise InputError(
            f"store={store} is not empty; give an empty or new folder (the result's files would overwrite its files)",
            {"store=": "store"},
        )
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the folder store={store}: {exc.strerror}", {"store=": "store"}) from exc
    return store


def allocate_views(template: Predictions, num_frames: int, store: Path | None = None) -> Predictions:
    """Empty predictions of ``num_frames`` views shaped and typed as ``template``'s, filled by
    :func:`put_views`: the merged capture is written in place, never joined from copies. With a
    ``store`` folder each array is a memory-mapped ``<name>.npy`` file in it (NumPy's format), so
    the capture's result lives on disk and the host holds only the pages in use."""
    return Predictions(
        **{
            f.name: empty_array(
                (num_frames, *getattr(template, f.name).shape[1:]), getattr(template, f.name).dtype, store, f.name
            )
            for f in fields(Predictions)
        }
    )


def empty_array(shape: tuple[int, ...], dtype, store: Path | None, name: str) -> np.ndarray:
    """An uninitialised array in memory, or memory-mapped as ``store/<name>.npy`` when ``store`` is given."""
    if store is None:
        return np.empty(shape, dtype)
    return np.lib.format.open_memmap(Path(store) / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)


def zeros_array(shape: tuple[int, ...], dtype, store: Path | None, name: str) -> np.ndarray:
    """:func:`empty_array`, all zeros (a new memory-mapped file reads as zeros without being written)."""
    return np.zeros(shape, dtype) if store is None else empty_array(shape, dtype, store, name)


def put_views(target: Predictions, frames: np.ndarray, source: Predictions, views: np.ndarray) -> None:
    """Write ``source``'s views ``views`` into ``target``'s views ``frames`` (same length)."""
    for f in fields(Predictions):
        getattr(target, f.name)[frames] = getattr(source, f.name)[views]


def last_views(predictions: Predictions, count: int) -> Predictions:
    """The last ``count`` views (views, not copies): what the next window's fit reads."""
    return Predictions(**{f.name: getattr(predictions, f.name)[-count:] for f in fields(Predictions)})
