"""The network over a long capture, one window at a time: run, align, cluster, merge, link.

See :mod:`iggt.inference.windows` for the windows and their alignment and
:mod:`iggt.instances.linking` for the instance IDs kept across windows. Memory: the network holds
one window. What grows with the capture is the result only (the merged predictions and instance
labels, written in place as each window is done); of the windows, only the last one's shared
frames and instances are kept for the next.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from iggt.device import resolve_device
from iggt.errors import InputError
from iggt.geometry.similarity import Similarity
from iggt.inference.host_allocator import fix_mmap_threshold
from iggt.inference.runner import run_model
from iggt.inference.windows import (
    SPELLINGS,
    WindowPlan,
    allocate_views,
    fit_shared,
    last_views,
    put_views,
    to_world,
    zeros_array,
)
from iggt.instances.config import InstanceConfig
from iggt.instances.extract import instance_labels, table_device
from iggt.instances.lifting import instance_means
from iggt.instances.linking import TrackLabels, WindowInstances
from iggt.instances.points import scene_points
from iggt.instances.profile import timed_part
from iggt.model.fast_mode import FastMode
from iggt.structures.instances import Instances
from iggt.structures.predictions import Predictions

logger = logging.getLogger(__name__)


@dataclass
class WindowedRun:
    """A long capture reconstructed in windows.

    Attributes:
        predictions: the merged predictions of all S frames in the world (first camera) frame.
        instances: instances of all S frames, IDs kept across windows.
        plan: the windows.
        similarities: per window, the Sim(3) from its frame to the world (the first is the identity).
        inliers: per window, the point pairs of its shared frames that agree with its fit (0 for the first).
        notes: one line per window its shared frames do not tie to the previous one (placed by the
            unconfirmed fit; the frames from its first own frame on are named).
        network_s: wall seconds of the windows' network passes, added up (with ``prefetch`` they
            overlap the alignment, clustering and merging of the window before).
    """

    predictions: Predictions
    instances: Instances
    plan: WindowPlan
    similarities: list[Similarity]
    inliers: list[int]
    notes: list[str]
    network_s: float = 0.0


def run_windowed(
    model,
    images: torch.Tensor,
    plan: WindowPlan,
    instance_config: InstanceConfig,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    chunk_size: int | None = None,
    head_dtype: str | torch.dtype = "auto",
    progress: bool = False,
    store: Path | None = None,
    fast_mode: str | FastMode | None = None,
) -> WindowedRun:
    """Reconstruct (S, 3, H, W) ``images`` window by window (arguments as :func:`run_model`;
    ``store`` as :func:`reconstruct_windows`). On a GPU the next window's network runs while the
    host aligns and clusters the last one."""

    def predict(frames: range) -> Predictions:
        window = images[frames.start : frames.stop]
        return run_model(model, window, device, dtype, chunk_size, progress, head_dtype, fast_mode)

    on_gpu = resolve_device(device).type == "cuda"
    return reconstruct_windows(predict, plan, instance_config, progress, store=store, prefetch=on_gpu)


def reconstruct_windows(
    predict: Callable[[range], Predictions],
    plan: WindowPlan,
    instance_config: InstanceConfig,
    progress: bool = False,
    on_window: Callable[[int], None] | None = None,
    strict: bool = False,
    store: Path | None = None,
    prefetch: bool = False,
) -> WindowedRun:
    """Align, merge and link the windows of ``plan``; ``predict(frames)`` gives one window's
    predictions in its own frame (the network, or anything that predicts like it).
    A window whose shared frames do not confirm its fit is an InputError with ``strict``; else it
    is placed by that fit and named, with the frames it places, in ``notes`` (a long capture is not
    lost for one weak overlap, and no frame is dropped). No fit at all is an InputError either way.
    ``on_window(index)`` is called once each window is merged (benchmarks read time and memory there).

    ``store``: a folder for the capture's result, written there as memory-mapped ``.npy`` files
    (one per :class:`Predictions` field, and ``instance_labels.npy``), so that the host's memory
    is bounded by the window whatever the capture's length; the returned arrays are those maps.
    None keeps the result in memory; with a store, glibc's mmap threshold is fixed for the process
    (:mod:`iggt.inference.host_allocator`), else its freed pages grow with the capture.
    ``prefetch``: call ``predict`` for the next window on a second thread while this one is
    aligned, clustered and merged (worth it when ``predict`` runs on a GPU; on the CPU the two
    would share the cores and both windows' memory)."""
    logger.info("windowed reconstruction: %s", plan.describe())
    passes: list[float] = []

    def timed_predict(frames: range) -> Predictions:
        start = time.perf_counter()
        try:
            return predict(frames)
        finally:
            passes.append(time.perf_counter() - start)

    if store is not None:  # the run whose host memory must not grow with the capture
        fix_mmap_threshold()
    previous: Predictions | None = None
    merged: Predictions | None = None
    tracks: TrackLabels | None = None
    similarities, inliers, notes = [], [], []
    bar = tqdm(plan.windows, desc="windows", unit="window", disable=not progress, leave=False)
    with ThreadPoolExecutor(1) as ahead:
        upcoming = ahead.submit(timed_predict, plan.windows[0]) if prefetch else None
        for index, frames in enumerate(bar):
            local = upcoming.result() if prefetch else timed_predict(frames)
            if prefetch and index + 1 < len(plan.windows):
                upcoming = ahead.submit(timed_predict, plan.windows[index + 1])
            if previous is None:
                similarity, agreeing = Similarity.identity(), 0
            else:
                shared, label = len(plan.shared(index)), _pair_label(plan, index)
                fit = fit_shared(previous, local, shared)
                if fit.similarity is None or (strict and not fit.confirmed):
                    raise InputError(fit.disagreement(label, shared), SPELLINGS)
                if not fit.confirmed:
                    first_own = int(np.flatnonzero(plan.owner == index)[0])
                    notes.append(
                        f"{fit.shortfall(label, shared)}: frames {first_own}-{plan.num_frames - 1} are placed "
                        f"through this unconfirmed fit (a larger overlap or frames closer together tie them)"
                    )
                    logger.warning("%s", notes[-1])
                similarity, agreeing = fit.similarity, fit.agreeing
            aligned = to_world(local, similarity)
            del local
            labels = instance_labels(aligned, instance_config)
            ids, means = instance_means(labels, aligned.instance_feat)
            if merged is None:
                merged = allocate_views(aligned, plan.num_frames, store)
                shape = merged.depth.shape
                tracks = TrackLabels(shape, zeros_array(shape, np.int32, store, "instance_labels"))
            owned = plan.owned(index)
            put_views(merged, owned + frames.start, aligned, owned)
            tracks.add(WindowInstances(frames, labels, ids, means), owned + frames.start)
            similarities.append(similarity)
            inliers.append(agreeing)
            # the next fit reads the frames it shares with this window: at most all but one
            previous = last_views(aligned, len(frames) - 1) if index + 1 < len(plan.windows) else None
            del aligned, labels
            if on_window is not None:
                on_window(index)
    with timed_part("points"):
        points, confidence = scene_points(merged, instance_config.point_source)
    with timed_part("lifting"):
        features, percentile = merged.instance_feat, instance_config.box_percentile
        instances = tracks.finish(points, confidence, features, percentile, device=table_device(instance_config))
    predictions = merged
    return WindowedRun(predictions, instances, plan, similarities, inliers, notes, sum(passes))


def _pair_label(plan: WindowPlan, index: int) -> str:
    """ "windows 1 and 2 (frames 6-13 and 12-19)": names a window and the one before it in errors."""
    earlier, later = plan.windows[index - 1], plan.windows[index]
    return (
        f"windows {index - 1} and {index} (frames {earlier.start}-{earlier.stop - 1} and "
        f"{later.start}-{later.stop - 1})"
    )
