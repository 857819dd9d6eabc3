"""Which pixels become exported 3D points, and the one input check of every exporter.

Each format module has a writer ``write_<fmt>(predictions, instances, out_dir, options)`` that
takes checked inputs, and its public ``export_<fmt> = public_exporter(write_<fmt>)``, which checks
them (:func:`check_matching`) first. :func:`iggt.export.export_all` checks once for all formats
and calls the writers, so the check runs once on every path and no writer sees unchecked labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iggt.errors import InputError
from iggt.export.options import ExportOptions
from iggt.instances.points import confident_pixels, scene_points
from iggt.structures import Instances, Predictions


@dataclass
class PointSelection:
    """M exported points, each one pixel of one view.

    Attributes:
        index: (M,) int64 flat pixel index into (S, H, W), ascending.
        view, row, column: (M,) int64 where the pixel is.
        xyz: (M, 3) float32 world point (OpenCV world = first camera frame).
        rgb: (M, 3) uint8 image colour.
        instance_id: (M,) int32 instance ID, 0 = none.
        confidence: (M,) float32 point confidence.
    """

    index: np.ndarray
    view: np.ndarray
    row: np.ndarray
    column: np.ndarray
    xyz: np.ndarray
    rgb: np.ndarray
    instance_id: np.ndarray
    confidence: np.ndarray


def check_matching(predictions: Predictions, instances: Instances) -> None:
    """Raise InputError unless the label maps cover exactly the predicted views and pixels."""
    expected = predictions.images.shape[:3]
    if instances.labels.shape != expected:
        raise InputError(
            f"instances.labels has shape {instances.labels.shape} but predictions are {expected} (S, H, W); "
            "extract the instances from these predictions"
        )


Writer = Callable[[Predictions, Instances, Path, ExportOptions], list[Path]]
"""``write_<fmt>(predictions, instances, out_dir, options)``: inputs checked, returns the written files."""


def public_exporter(write: Writer) -> Callable[..., list[Path]]:
    """The public ``export_<fmt>(predictions, instances, out_dir, options=None)`` of ``write``:
    checks that the instances match the predictions, then writes (with the default options if None)."""

    def export(
        predictions: Predictions, instances: Instances, out_dir: str | Path, options: ExportOptions | None = None
    ) -> list[Path]:
        check_matching(predictions, instances)
        return write(predictions, instances, Path(out_dir), options or ExportOptions())

    export.__name__ = export.__qualname__ = write.__name__.replace("write_", "export_", 1)
    export.__module__, export.__doc__ = write.__module__, write.__doc__
    return export


def to_uint8(colours: np.ndarray) -> np.ndarray:
    """(..., 3) floats in [0, 1] -> (..., 3) uint8."""
    return np.round(np.clip(colours, 0, 1) * 255).astype(np.uint8)


def select_points(
    predictions: Predictions, instances: Instances, options: ExportOptions, max_points: int | None
) -> PointSelection:
    """Finite, confident pixels (``options.confidence_quantile``), at most ``max_points`` of them."""
    points, confidence = scene_points(predictions, options.point_source)
    flat_points, flat_confidence = points.reshape(-1, 3), confidence.reshape(-1)
    finite = np.isfinite(flat_points).all(1) & np.isfinite(flat_confidence)
    index = np.flatnonzero(confident_pixels(flat_confidence, finite, options.confidence_quantile))
    if max_points is not None and len(index) > max_points:
        rng = np.random.default_rng(options.seed)
        index = np.sort(rng.choice(index, size=max_points, replace=False))
    _, height, width = predictions.images.shape[:3]
    view, pixel = np.divmod(index, height * width)
    row, column = np.divmod(pixel, width)
    return PointSelection(
        index=index,
        view=view,
        row=row,
        column=column,
        xyz=flat_points[index],
        rgb=to_uint8(predictions.images.reshape(-1, 3)[index]),
        instance_id=instances.labels.reshape(-1)[index].astype(np.int32),
        confidence=flat_confidence[index],
    )
