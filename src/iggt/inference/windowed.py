"""The network over a long capture, one window at a time: run, align, cluster, merge, link.

See :mod:`iggt.inference.windows` for the windows and their alignment and
:mod:`iggt.instances.linking` for the instance IDs kept across windows. Memory: the network holds
one window; besides the merged result (which grows with the capture, as any output must), only
the previous window's predictions and each window's instance labels are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from iggt.geometry.similarity import Similarity
from iggt.inference.runner import run_model
from iggt.inference.windows import WindowPlan, concatenate_views, fit_to_previous, select_views, to_world
from iggt.instances.config import InstanceConfig
from iggt.instances.extract import extract_instances
from iggt.instances.linking import WindowInstances, link_windows
from iggt.instances.points import scene_points
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
    """

    predictions: Predictions
    instances: Instances
    plan: WindowPlan
    similarities: list[Similarity]
    inliers: list[int]


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
) -> WindowedRun:
    """Reconstruct (S, 3, H, W) ``images`` window by window (arguments as :func:`run_model`)."""

    def predict(frames: range) -> Predictions:
        window = images[frames.start : frames.stop]
        return run_model(model, window, device, dtype, chunk_size, progress, head_dtype)

    return reconstruct_windows(predict, plan, instance_config, progress)


def reconstruct_windows(
    predict: Callable[[range], Predictions],
    plan: WindowPlan,
    instance_config: InstanceConfig,
    progress: bool = False,
) -> WindowedRun:
    """Align, merge and link the windows of ``plan``; ``predict(frames)`` gives one window's
    predictions in its own frame (the network, or anything that predicts like it)."""
    logger.info("windowed reconstruction: %s", plan.describe())
    previous: Predictions | None = None
    parts, windows, similarities, inliers = [], [], [], []
    bar = tqdm(plan.windows, desc="windows", unit="window", disable=not progress, leave=False)
    for index, frames in enumerate(bar):
        local = predict(frames)
        if previous is None:
            similarity, agreeing = Similarity.identity(), 0
        else:
            similarity, agreeing = fit_to_previous(previous, local, len(plan.shared(index)), _pair_label(plan, index))
        aligned = to_world(local, similarity)
        found = extract_instances(aligned, instance_config)
        windows.append(WindowInstances(frames, found.labels, found.ids, found.mean_features))
        parts.append(select_views(aligned, plan.owned(index)))
        similarities.append(similarity)
        inliers.append(agreeing)
        previous = aligned
    predictions = concatenate_views(parts)
    points, confidence = scene_points(predictions, instance_config.point_source)
    instances = link_windows(
        windows, plan.owner, points, confidence, predictions.instance_feat, instance_config.box_percentile
    )
    return WindowedRun(predictions, instances, plan, similarities, inliers)


def _pair_label(plan: WindowPlan, index: int) -> str:
    """ "windows 1 and 2 (frames 6-13 and 12-19)": names a window and the one before it in errors."""
    earlier, later = plan.windows[index - 1], plan.windows[index]
    return (
        f"windows {index - 1} and {index} (frames {earlier.start}-{earlier.stop - 1} and "
        f"{later.start}-{later.stop - 1})"
    )
