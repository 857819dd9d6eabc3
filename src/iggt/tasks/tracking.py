"""Instance spatial tracking: one instance through every view of a saved reconstruction.

For each view the instance is *visible*, *occluded* or *out of frame*. The state is decided by
geometry, not by whether the view's mask has pixels (the clustering may miss an instance in a
view; a mask cannot say why it is empty): the instance's 3D points (its pixels in all views,
unprojected) are projected into the view; points landing inside the image are *in frame*, and an
in-frame point *passes the depth test* when the view's predicted depth at its pixel (nearest
pixel) is not in front of it by more than ``depth_tolerance`` times the point's own depth, or
there is no valid depth there. Few in-frame points: out of frame; enough passing points, or at
least ``min_points`` pixels of the instance's own mask in the view: visible; otherwise occluded
(something nearer covers it).

The 3D summary is a PCA-aligned box of the points: axes from the covariance of the points
nearest the median (the ``1 - 2 * box_quantile`` closest), extents between the ``box_quantile``
and ``1 - box_quantile`` quantiles along each axis, centroid the mean of the points inside.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np

from iggt.errors import ConfigError, InputError
from iggt.instances import scene_points
from iggt.instances.config import POINT_SOURCES
from iggt.instances.points import confident_pixels
from iggt.tasks.result import SavedResult


class ViewState(str, Enum):
    VISIBLE = "visible"
    OCCLUDED = "occluded"
    OUT_OF_FRAME = "out_of_frame"


@dataclass(frozen=True)
class TrackingConfig:
    """How states and boxes are decided (module docstring)."""

    depth_tolerance: float = 0.05
    """Relative depth-test tolerance: a point at depth z passes where predicted depth >= (1 - tol) z."""

    min_points: int = 10
    """Fewer in-frame points than this: out of frame; at least this many passing points are needed to be
    visible (capped at the instance's number of points)."""

    min_visible_fraction: float = 0.02
    """And at least this fraction of the in-frame points must pass to be visible (predicted depth is noisy)."""

    box_quantile: float = 0.02
    """Fraction of points cut at each end of every box axis (outliers, flying pixels)."""

    confidence_quantile: float = 0.1
    """The instance's least confident fraction of pixels is not used as 3D points."""

    max_points: int = 50_000
    """Most 3D points used (an even subset); projection cost grows with it."""

    point_source: str = "depth"
    """3D points from "depth" (depth head + predicted cameras, consistent with the depth test) or "world_points"."""

    def __post_init__(self) -> None:
        checks = {
            "depth_tolerance": 0 <= self.depth_tolerance < 1,
            "min_points": self.min_points >= 1,
            "min_visible_fraction": 0 <= self.min_visible_fraction <= 1,
            "box_quantile": 0 <= self.box_quantile < 0.5,
            "confidence_quantile": 0 <= self.confidence_quantile < 1,
            "max_points": self.max_points >= 1,
            "point_source": self.point_source in POINT_SOURCES,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"TrackingConfig.{name}={getattr(self, name)!r} is out of range; see its docstring")


@dataclass
class OrientedBox:
    """A box in the world frame: ``centre + axes.T @ (s * half_extents)`` for s in [-1, 1]^3.

    Attributes:
        centre: (3,). axes: (3, 3) unit rows, largest spread first, right-handed.
        half_extents: (3,) along each axis.
    """

    centre: np.ndarray
    axes: np.ndarray
    half_extents: np.ndarray

    def corners(self) -> np.ndarray:
        """(8, 3) corner points."""
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
        return self.centre + (signs * self.half_extents) @ self.axes


@dataclass
class ViewTrack:
    """The instance in one view: its state, the mask's pixels and the projection counts behind the state."""

    view: int
    name: str
    state: ViewState
    mask_pixels: int
    points_in_frame: int
    points_passing: int


@dataclass
class InstanceTrack:
    """One instance across S views.

    Attributes:
        instance_id: the ID (same in every view).
        masks: (S, H, W) bool the instance's pixels per view.
        views: S per-view states.
        points: (M, 3) float32 its 3D points (world frame), colours: (M, 3) uint8.
        centroid: (3,) mean of the points inside the box. box: the oriented box.
    """

    instance_id: int
    masks: np.ndarray
    views: list[ViewTrack]
    points: np.ndarray
    colours: np.ndarray
    centroid: np.ndarray
    box: OrientedBox
    config: TrackingConfig

    def states(self) -> list[ViewState]:
        return [view.state for view in self.views]

    def to_json(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "num_points": len(self.points),
            "centroid": self.centroid.tolist(),
            "box": {
                "centre": self.box.centre.tolist(),
                "axes": self.box.axes.tolist(),
                "half_extents": self.box.half_extents.tolist(),
                "corners": self.box.corners().tolist(),
            },
            "views": [{**asdict(view), "state": view.state.value} for view in self.views],
            "config": asdict(self.config),
        }


def instance_at_pixel(result: SavedResult, view: int, x: int, y: int) -> int:
    """The instance ID under pixel (x = column, y = row) of a view, at the network resolution."""
    result.check_view(view)
    _, height, width = result.instances.labels.shape
    if not (0 <= x < width and 0 <= y < height):
        raise InputError(f"pixel ({x}, {y}) is outside view {view}, which is {width}x{height} (x = column, y = row)")
    instance_id = int(result.instances.labels[view, y, x])
    if instance_id == 0:
        raise InputError(f"pixel ({x}, {y}) of view {view} belongs to no instance; pick a pixel on an object")
    return instance_id


def track_instance(result: SavedResult, instance_id: int, config: TrackingConfig | None = None) -> InstanceTrack:
    """Masks, per-view states, 3D points, centroid and oriented box of one instance."""
    config = config or TrackingConfig()
    result.check_instance(instance_id)
    predictions = result.predictions
    masks = result.instances.labels == instance_id
    points, colours = _instance_points(result, masks, config)
    if len(points) == 0:
        raise InputError(f"instance {instance_id} has no finite 3D points; it cannot be tracked")
    views = [_view_track(result, view, masks[view], points, config) for view in range(predictions.num_views)]
    box, centroid = oriented_box(points, config.box_quantile)
    return InstanceTrack(instance_id, masks, views, points, colours, centroid, box, config)


def _instance_points(result: SavedResult, masks: np.ndarray, config: TrackingConfig) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) float32 confident finite points of the masked pixels and (M, 3) uint8 colours."""
    points, confidence = scene_points(result.predictions, config.point_source)
    points, confidence = points[masks], confidence[masks]
    colours = np.round(np.clip(result.predictions.images[masks], 0, 1) * 255).astype(np.uint8)
    finite = np.isfinite(points).all(1) & np.isfinite(confidence)
    keep = confident_pixels(confidence, finite, config.confidence_quantile)
    points, colours = points[keep], colours[keep]
    step = -(-len(points) // config.max_points)
    return points[::step], colours[::step]


def _view_track(
    result: SavedResult, view: int, mask: np.ndarray, points: np.ndarray, config: TrackingConfig
) -> ViewTrack:
    predictions = result.predictions
    height, width = predictions.image_size
    extrinsic = predictions.extrinsic[view].astype(np.float64)
    intrinsic = predictions.intrinsic[view].astype(np.float64)
    camera = points.astype(np.float64) @ extrinsic[:, :3].T + extrinsic[:, 3]
    z = camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels = camera @ intrinsic.T
        column, row = np.round(pixels[:, 0] / z), np.round(pixels[:, 1] / z)
    in_frame = (z > 0) & (column >= 0) & (column < width) & (row >= 0) & (row < height)
    depth = predictions.depth[view][row[in_frame].astype(np.int64), column[in_frame].astype(np.int64)]
    no_depth = ~(np.isfinite(depth) & (depth > 0))
    passing = int((no_depth | (depth >= (1 - config.depth_tolerance) * z[in_frame])).sum())
    count = int(in_frame.sum())
    least = min(config.min_points, len(points))  # an instance of few pixels can still be followed
    if count < least:
        state = ViewState.OUT_OF_FRAME
    elif passing >= max(least, config.min_visible_fraction * count) or mask.sum() >= least:
        state = ViewState.VISIBLE
    else:
        state = ViewState.OCCLUDED
    return ViewTrack(view, result.view_names[view], state, int(mask.sum()), count, passing)


def oriented_box(points: np.ndarray, quantile: float) -> tuple[OrientedBox, np.ndarray]:
    """PCA-aligned box of (M, 3) points robust to outliers (module docstring); returns (box, centroid)."""
    points = points.astype(np.float64)
    distance = np.linalg.norm(points - np.median(points, 0), axis=1)
    core = points[distance <= np.quantile(distance, 1 - 2 * quantile)]
    core = core if len(core) >= 3 else points
    centred = core - core.mean(0)
    axes = np.linalg.eigh(centred.T @ centred)[1][:, ::-1].T.copy()  # rows: principal axes, largest first
    axes[2] = np.cross(axes[0], axes[1])  # right-handed
    projected = points @ axes.T
    low, high = np.quantile(projected, [quantile, 1 - quantile], axis=0)
    inside = ((projected >= low) & (projected <= high)).all(1)
    centroid = points[inside].mean(0) if inside.any() else points.mean(0)
    box = OrientedBox(centre=((low + high) / 2) @ axes, axes=axes, half_extents=(high - low) / 2)
    return box, centroid
