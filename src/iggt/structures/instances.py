"""Instances found in one scene: an ID map per view plus a per-instance table.

IDs are 1..K and mean the same object in every view; 0 means no instance (background or noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iggt.errors import InputError
from iggt.structures.npz_archive import save_npz
from iggt.structures.strict_json import finite_or_none, write_strict_json


@dataclass
class Instances:
    """Instance segmentation of S views consistent across views.

    Attributes:
        labels: (S, H, W) int32 instance ID per pixel, 0 = none.
        ids: (K,) int32 the instance IDs present, ascending, all > 0.
        pixel_counts: (K, S) int64 pixels of each instance in each view.
        centroids: (K, 3) float32 mean 3D point of each instance (world frame).
        bbox_min: (K, 3) float32 axis-aligned box minimum (world frame).
        bbox_max: (K, 3) float32 axis-aligned box maximum (world frame).
        mean_features: (K, C) float32 unit-norm mean instance feature.
    """

    labels: np.ndarray
    ids: np.ndarray
    pixel_counts: np.ndarray
    centroids: np.ndarray
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    mean_features: np.ndarray

    def __post_init__(self) -> None:
        if self.labels.ndim != 3:
            raise InputError(f"Instances.labels must be (S, H, W), got {self.labels.shape}")
        k, s = len(self.ids), self.labels.shape[0]
        for name, shape in {
            "pixel_counts": (k, s),
            "centroids": (k, 3),
            "bbox_min": (k, 3),
            "bbox_max": (k, 3),
        }.items():
            if getattr(self, name).shape != shape:
                raise InputError(f"Instances.{name} must have shape {shape}, got {getattr(self, name).shape}")
        if self.mean_features.ndim != 2 or self.mean_features.shape[0] != k:
            raise InputError(f"Instances.mean_features must be (K, C) with K={k}, got {self.mean_features.shape}")

    @property
    def num_instances(self) -> int:
        return len(self.ids)

    def visible_views(self, instance_id: int) -> np.ndarray:
        """(S,) bool: in which views the instance has at least one pixel."""
        row = int(np.searchsorted(self.ids, instance_id))
        if row >= len(self.ids) or self.ids[row] != instance_id:
            raise InputError(f"no instance with id {instance_id}; ids are {self.ids.tolist()}")
        return self.pixel_counts[row] > 0

    def to_json(self) -> dict:
        """The per-instance table as strict-JSON types (what instances.json holds).

        Non-finite numbers (an instance without finite 3D points) become None: strict JSON has no NaN.
        """
        return finite_or_none(
            {
                "num_views": int(self.labels.shape[0]),
                "image_size": [int(self.labels.shape[1]), int(self.labels.shape[2])],
                "instances": [
                    {
                        "id": int(i),
                        "pixel_counts": self.pixel_counts[r].tolist(),
                        "visible_views": np.flatnonzero(self.pixel_counts[r] > 0).tolist(),
                        "centroid": self.centroids[r].tolist(),
                        "bbox_min": self.bbox_min[r].tolist(),
                        "bbox_max": self.bbox_max[r].tolist(),
                        "mean_feature": self.mean_features[r].tolist(),
                    }
                    for r, i in enumerate(self.ids)
                ],
            }
        )

    def save(self, path: str | Path, threads: int | None = None, deflate_floats: bool = False) -> None:
        """Write all arrays to one ``.npz``, as :meth:`Predictions.save` does."""
        save_npz(
            path,
            {
                "labels": self.labels,
                "ids": self.ids,
                "pixel_counts": self.pixel_counts,
                "centroids": self.centroids,
                "bbox_min": self.bbox_min,
                "bbox_max": self.bbox_max,
                "mean_features": self.mean_features,
            },
            threads,
            deflate_floats,
        )

    @classmethod
    def load(cls, path: str | Path) -> Instances:
        try:
            with np.load(path) as d:
                return cls(**{k: d[k] for k in d.files})
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise InputError(f"cannot read instances from {path}: {exc}") from exc

    def write_json(self, path: str | Path) -> None:
        write_strict_json(path, self.to_json())
