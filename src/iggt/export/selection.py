"""Which pixels become exported 3D points, and the one input check of every exporter.

Each format module has a writer ``write_<fmt>(predictions, instances, out_dir, options)`` that
takes checked inputs, and its public ``export_<fmt> = public_exporter(write_<fmt>)``, which checks
them (:func:`check_matching`) first. :func:`iggt.export.export_all` checks once for all formats
and calls the writers, so the check runs once on every path and no writer sees unchecked labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from iggt.errors import InputError
from iggt.export.options import ExportOptions
from iggt.instances.lifting import view_chunks
from iggt.instances.points import scene_points
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


QUANTILE_SAMPLE = 1 << 24
"""Most confidences the confidence cut is the quantile of: beyond it, an even subset of the finite
ones (a capture of thousands of frames would otherwise be copied whole to be sorted)."""
CHUNK_PIXELS = 1 << 22
"""Pixels of the views read at once: the selection's temporaries are bounded by it, not by S."""


def select_points(
    predictions: Predictions, instances: Instances, options: ExportOptions, max_points: int | None
) -> PointSelection:
    """Finite, confident pixels (``options.confidence_quantile``), at most ``max_points`` of them
    (a seeded random subset). The views are read a few at a time, so the arrays may be memory maps
    of a long capture: the memory is that of the chunk and of the selected points."""
    _, height, width = predictions.images.shape[:3]
    chunks = view_chunks(predictions.images.shape, CHUNK_PIXELS)

    last: dict[tuple[int, int], tuple] = {}  # the last chunk read: each pass reads the chunks in order

    def chunk_points(part: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 3) points, (N,) confidence and (N,) finite of the views ``part``."""
        if (part.start, part.stop) not in last:
            points, confidence = scene_points(_views(predictions, part), options.point_source)
            points, confidence = points.reshape(-1, 3), confidence.reshape(-1)
            last.clear()
            last[part.start, part.stop] = points, confidence, finite_rows(points) & np.isfinite(confidence)
        return last[part.start, part.stop]

    finite_counts = [int(chunk_points(part)[2].sum()) for part in chunks]
    stride = max(1, -(-sum(finite_counts) // QUANTILE_SAMPLE))
    sample, seen = [], 0
    for part in chunks:
        _, confidence, finite = chunk_points(part)
        values = confidence[finite]
        sample.append(values[(-seen) % stride :: stride])
        seen += len(values)
    sample = np.concatenate(sample) if sample else np.zeros(0, np.float32)
    cut = float(np.quantile(sample, options.confidence_quantile)) if len(sample) else np.inf

    def confident(part: slice) -> np.ndarray:
        _, confidence, finite = chunk_points(part)
        return np.flatnonzero(finite & (confidence >= cut))

    counts = [len(confident(part)) for part in chunks]
    total = sum(counts)
    keep = np.arange(total)
    if max_points is not None and total > max_points:
        keep = np.sort(np.random.default_rng(options.seed).choice(total, size=max_points, replace=False))
    picked = {"index": [], "xyz": [], "confidence": [], "rgb": [], "instance_id": []}
    offset = 0
    for part, count in zip(chunks, counts, strict=True):
        chosen = keep[np.searchsorted(keep, offset) : np.searchsorted(keep, offset + count)] - offset
        offset += count
        if len(chosen) == 0:
            continue
        points, confidence, _ = chunk_points(part)
        local = confident(part)[chosen]
        picked["index"].append(local + part.start * height * width)
        picked["xyz"].append(points[local])
        picked["confidence"].append(confidence[local])
        picked["rgb"].append(to_uint8(np.asarray(predictions.images[part]).reshape(-1, 3)[local]))
        picked["instance_id"].append(np.asarray(instances.labels[part]).reshape(-1)[local].astype(np.int32))
    empty = {"index": (0,), "xyz": (0, 3), "confidence": (0,), "rgb": (0, 3), "instance_id": (0,)}
    types = {"index": np.int64, "xyz": np.float32, "confidence": np.float32, "rgb": np.uint8, "instance_id": np.int32}
    joined = {
        key: np.concatenate(parts) if parts else np.zeros(empty[key], types[key]) for key, parts in picked.items()
    }
    index = joined["index"].astype(np.int64)
    view, pixel = np.divmod(index, height * width)
    row, column = np.divmod(pixel, width)
    return PointSelection(
        index=index,
        view=view,
        row=row,
        column=column,
        xyz=joined["xyz"].astype(np.float32, copy=False),
        rgb=joined["rgb"],
        instance_id=joined["instance_id"],
        confidence=joined["confidence"].astype(np.float32, copy=False),
    )


def finite_rows(points: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N,) bool, rows whose three values are finite (``np.isfinite(points).all(1)``,
    5 times faster: numpy reduces a length-3 axis slowly, and this runs on every pixel)."""
    finite = np.isfinite(points)
    return finite[:, 0] & finite[:, 1] & finite[:, 2]


def _views(predictions: Predictions, part: slice) -> Predictions:
    """The views ``part`` of ``predictions`` (views of its arrays, not copies)."""
    return Predictions(**{f.name: getattr(predictions, f.name)[part] for f in fields(Predictions)})
