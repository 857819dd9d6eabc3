"""Predictions -> Instances: cluster the instance features of all views jointly, then lift to 3D."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from iggt.instances.clustering import cluster_features, relabel_by_size
from iggt.instances.config import InstanceConfig
from iggt.instances.lifting import lift_instances
from iggt.instances.majority import majority_filter
from iggt.instances.points import scene_points
from iggt.instances.profile import timed_part
from iggt.instances.transfer import torch_path_device
from iggt.structures import Instances, Predictions


def extract_instances(predictions: Predictions, config: InstanceConfig | None = None) -> Instances:
    """Instances whose IDs agree across the views of ``predictions``.

    All pixels of all views are clustered together (see :mod:`iggt.instances.clustering`), so
    one object gets one ID everywhere. IDs are 1..K by decreasing pixel count; 0 = no instance.
    """
    config = config or InstanceConfig()
    points, confidence = _points(predictions, config)
    labels = _cluster_views(predictions.instance_feat, points, confidence, config)
    return _lifted(labels, points, confidence, predictions, config)


def instance_labels(predictions: Predictions, config: InstanceConfig | None = None) -> np.ndarray:
    """(S, H, W) int32 labels of :func:`extract_instances` without the per-instance table (a
    long capture's windows need only their labels; the capture's table is made once at the end)."""
    config = config or InstanceConfig()
    points, confidence = _points(predictions, config)
    return _cluster_views(predictions.instance_feat, points, confidence, config).astype(np.int32, copy=False)


def _cluster_views(
    features: np.ndarray, points: np.ndarray, confidence: np.ndarray, config: InstanceConfig
) -> np.ndarray:
    """(S, H, W, C) features, (S, H, W, 3) points, (S, H, W) confidence -> (S, H, W) int32 labels."""
    views, height, width, channels = features.shape
    with timed_part("clustering"):  # its "assignment" part is timed on its own
        labels = cluster_features(
            features.reshape(-1, channels),
            points.reshape(-1, 3) if config.use_positions else None,
            config,
            confidence=confidence.reshape(-1),
        )
    return _filtered(labels.reshape(views, height, width), config)


def cluster_positions_colours(
    predictions: Predictions, config: InstanceConfig | None = None, colour_weight: float = 1.0
) -> Instances:
    """Baseline without learned features: cluster predicted world points and RGB colours.

    Each pixel becomes ``[colour_weight * rgb, position_weight * normalised xyz]`` and goes
    through the same sampling, HDBSCAN, merging and assignment as :func:`extract_instances`
    (``use_positions`` is forced on). ``mean_features`` still summarise the network's features
    so both methods return comparable :class:`Instances`.
    """
    config = replace(config or InstanceConfig(), use_positions=True)
    views, height, width, _ = predictions.images.shape
    points, confidence = _points(predictions, config)
    with timed_part("clustering"):
        labels = cluster_features(
            predictions.images.reshape(-1, 3) * colour_weight,
            points.reshape(-1, 3),
            config,
            confidence=confidence.reshape(-1),
        )
    labels = _filtered(labels.reshape(views, height, width), config)
    return _lifted(labels, points, confidence, predictions, config)


def table_device(config: InstanceConfig) -> torch.device | None:
    """Where the majority filter and the lifting run (:func:`torch_path_device` of ``config.device``)."""
    return torch_path_device(config.device)


def _points(predictions: Predictions, config: InstanceConfig) -> tuple[np.ndarray, np.ndarray]:
    with timed_part("points"):
        return scene_points(predictions, config.point_source)


def _lifted(
    labels: np.ndarray, points: np.ndarray, confidence: np.ndarray, predictions: Predictions, config: InstanceConfig
) -> Instances:
    """The :class:`Instances` of the views' final labels, lifted on :func:`table_device`."""
    with timed_part("lifting"):
        features, percentile = predictions.instance_feat, config.box_percentile
        return lift_instances(labels, points, confidence, features, percentile, device=table_device(config))


def _filtered(labels: np.ndarray, config: InstanceConfig) -> np.ndarray:
    """(S, H, W) cluster labels after the majority filter, re-ranked (small ones dropped again)."""
    with timed_part("majority filter"):
        filtered = majority_filter(labels, config.majority_radius, device=table_device(config))
        return relabel_by_size(filtered.ravel(), config.min_pixels(filtered.size)).reshape(filtered.shape)
