"""Camera trajectories through a layout: orbits, look-at sets, walks and sweeps with real overlap.

Trajectories:
- orbit: an arc (up to a full circle) around an object, always looking at it;
- look_at: scattered positions that all look at one object from very different angles;
- walk: a path through the room looking ahead and to the sides, so objects leave and re-enter;
- sweep: a short slide while turning across an object and back, so objects leave and re-enter;
- drift: a short slide (0.15-0.6 m) facing one object with small turns: the easy case of a camera
  curriculum, every relative rotation below EASY_MAX_ROTATION_DEG;
- pan: a pure rotation about one fixed eye (zero baseline), turning as little as drift does.
Cameras stay in free space (away from walls and object footprints). Intrinsics follow OpenCV with
square pixels and the principal point at the image centre (W / 2, H / 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iggt.synth.config import EASY_MAX_ROTATION_DEG, TRAJECTORIES, SceneConfig
from iggt.synth.layout import SceneLayout

_WORLD_UP = np.array([0.0, 0.0, 1.0])
_GRID_STEP = 0.1


@dataclass
class CameraSet:
    """S cameras of one scene.

    Attributes:
        intrinsic: (S, 3, 3) float64 pixels of (H, W) images.
        extrinsic: (S, 3, 4) float64 camera-from-world, OpenCV.
        trajectory: the trajectory kind that produced them.
    """

    intrinsic: np.ndarray
    extrinsic: np.ndarray
    trajectory: str

    def select(self, indices: Sequence[int]) -> CameraSet:
        """The cameras at ``indices``, in that order."""
        chosen = list(indices)
        return CameraSet(self.intrinsic[chosen], self.extrinsic[chosen], self.trajectory)


def look_at(eye: np.ndarray, target: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(S, 3) eyes, (S, 3) targets, (S,) roll in radians -> (S, 3, 4) camera-from-world (OpenCV)."""
    forward = target - eye
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, _WORLD_UP)
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    cos, sin = np.cos(roll)[:, None], np.sin(roll)[:, None]
    right, down = cos * right + sin * down, cos * down - sin * right
    rotation = np.stack([right, down, forward], axis=-2)  # rows: camera axes in world coordinates
    translation = -(rotation @ eye[..., None])
    return np.concatenate([rotation, translation], -1)


def intrinsics_from_fov(fov_deg: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(S,) horizontal fields of view in degrees -> (S, 3, 3) intrinsics, square pixels, centred."""
    height, width = image_size
    focal = (width / 2) / np.tan(np.radians(fov_deg) / 2)
    intrinsic = np.zeros((len(fov_deg), 3, 3))
    intrinsic[:, 0, 0] = intrinsic[:, 1, 1] = focal
    intrinsic[:, 0, 2], intrinsic[:, 1, 2], intrinsic[:, 2, 2] = width / 2, height / 2, 1.0
    return intrinsic


def free_positions(layout: SceneLayout, clearance: float) -> np.ndarray:
    """(M, 2) floor grid points at least ``clearance`` from every wall and object footprint."""
    half = layout.room_size[:2] / 2 - clearance
    xs = np.arange(-half[0], half[0] + 1e-9, _GRID_STEP)
    ys = np.arange(-half[1], half[1] + 1e-9, _GRID_STEP)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    obstacles = layout.obstacles
    if len(obstacles):
        distance = np.linalg.norm(grid[:, None] - obstacles[None, :, :2], axis=-1)
        grid = grid[(distance > obstacles[None, :, 2] + clearance).all(-1)]
    return grid if len(grid) else np.zeros((1, 2))  # a packed room: the centre, the best there is


def _snap(points: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Move each (S, 2) point to its nearest free position."""
    distance = np.linalg.norm(points[:, None] - free[None], axis=-1)
    return free[distance.argmin(-1)]


def _heights(rng: np.random.Generator, count: int, config: SceneConfig) -> np.ndarray:
    """(S,) camera heights drifting smoothly inside the configured range."""
    low, high = config.camera_height_range
    start, end = rng.uniform(low, high, 2)
    return (np.linspace(start, end, count) + rng.uniform(-0.05, 0.05, count)).clip(low, high)


def _orbit(rng, layout, free, count, config):
    focus = layout.focus_points[rng.integers(len(layout.focus_points))]
    radius = rng.uniform(1.2, 3.0)
    span = rng.uniform(math.radians(120), 2 * math.pi)
    full_circle = span > 2 * math.pi - 0.1  # then the last view must not repeat the first
    angles = rng.uniform(0, 2 * math.pi) + span * np.arange(count) / max(count - (not full_circle), 1)
    ring = focus[:2] + radius * np.stack([np.cos(angles), np.sin(angles)], -1)
    eye = np.column_stack([_snap(ring, free), _heights(rng, count, config)])
    return eye, focus + rng.uniform(-0.15, 0.15, (count, 3))


def _look_at_set(rng, layout, free, count, config):
    focus = layout.focus_points[rng.integers(len(layout.focus_points))]
    far = free[np.linalg.norm(free - focus[:2], axis=-1) > 1.0]
    candidates = far if len(far) >= count else free
    picks = rng.choice(len(candidates), count, replace=len(candidates) < count)
    eye = np.column_stack([candidates[picks], _heights(rng, count, config)])
    return eye, focus + rng.uniform(-0.2, 0.2, (count, 3))


def _walk(rng, layout, free, count, config):
    waypoints = free[rng.choice(len(free), 3)]
    travelled = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(waypoints, axis=0), axis=-1))])
    arc = np.linspace(0, travelled[-1], count)
    path = np.stack([np.interp(arc, travelled, waypoints[:, axis]) for axis in (0, 1)], -1)
    segment = np.clip(np.searchsorted(travelled, arc, side="right") - 1, 0, len(waypoints) - 2)
    step = waypoints[segment + 1] - waypoints[segment]
    # Look ahead along the path, swinging left and right so objects leave and re-enter the view.
    swing = rng.uniform(math.radians(20), math.radians(60)) * np.sin(
        rng.uniform(1.0, 3.0) * 2 * math.pi * np.arange(count) / count + rng.uniform(0, 2 * math.pi)
    )
    return _looking(rng, _snap(path, free), np.arctan2(step[:, 1], step[:, 0]) + swing, count, config)


def _slide(rng, free, count: int, length_range: tuple[float, float]) -> np.ndarray:
    """(S, 2) free positions along a straight slide of a random length and direction from a free start."""
    start = free[rng.integers(len(free))]
    direction = rng.uniform(0, 2 * math.pi)
    slide = rng.uniform(*length_range) * np.array([math.cos(direction), math.sin(direction)])
    return _snap(start + np.linspace(0, 1, count)[:, None] * slide, free)


def _heading_to_focus(rng, layout, position: np.ndarray) -> float:
    """Heading (radians) from the (2,) ``position`` towards one of the layout's focus points."""
    focus = layout.focus_points[rng.integers(len(layout.focus_points))]
    return math.atan2(focus[1] - position[1], focus[0] - position[0])


def _sweep(rng, layout, free, count, config):
    path = _slide(rng, free, count, (0.3, 1.0))
    # Turn from one side of an object to the other and back: it stays in view longest.
    towards = _heading_to_focus(rng, layout, path[0])
    span = rng.uniform(math.radians(90), math.radians(200))
    out_and_back = 1 - np.abs(2 * np.linspace(0, 1, count) - 1)
    return _looking(rng, path, towards + span * (out_and_back - 0.5), count, config)


def _looking(rng, positions: np.ndarray, yaw: np.ndarray, count: int, config: SceneConfig):
    """Eyes at (S, 2) ``positions`` and targets 1 m ahead at heading ``yaw``, pitched slightly down."""
    pitch = rng.uniform(math.radians(-30), math.radians(-5), count)
    eye = np.column_stack([positions, _heights(rng, count, config)])
    ahead = np.stack([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)], -1)
    return eye, eye + ahead


# Easy trajectories share their turning budget: yaw and pitch each at most a third of it, roll
# (sample_cameras) +-3 degrees, so no two views differ by more than EASY_MAX_ROTATION_DEG.
_EASY_TURN = math.radians(EASY_MAX_ROTATION_DEG) * 0.4


def _steady(rng, positions: np.ndarray, heading: float, count: int, height: float):
    """Eyes at (S, 2) ``positions`` and one ``height``, turning a little around ``heading``."""
    yaw_span, pitch_span = rng.uniform(0.3, 1.0, 2) * _EASY_TURN
    yaw = heading + yaw_span * (np.linspace(-0.5, 0.5, count) + rng.uniform(-0.1, 0.1, count))
    pitch = rng.uniform(math.radians(-20), math.radians(-5)) + pitch_span * rng.uniform(-0.5, 0.5, count)
    eye = np.column_stack([positions, np.full(count, height)])
    ahead = np.stack([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)], -1)
    return eye, eye + ahead


def _drift(rng, layout, free, count, config):
    path = _slide(rng, free, count, (0.15, 0.6))
    heading = _heading_to_focus(rng, layout, path[0])
    return _steady(rng, path, heading, count, rng.uniform(*config.camera_height_range))


def _pan(rng, layout, free, count, config):
    eye = np.repeat(free[rng.integers(len(free))][None], count, axis=0)
    heading = _heading_to_focus(rng, layout, eye[0])
    return _steady(rng, eye, heading, count, rng.uniform(*config.camera_height_range))


_TRAJECTORY_FUNCTIONS = {
    "orbit": _orbit,
    "look_at": _look_at_set,
    "walk": _walk,
    "sweep": _sweep,
    "drift": _drift,
    "pan": _pan,
}
assert set(_TRAJECTORY_FUNCTIONS) == set(TRAJECTORIES)


def sample_cameras(
    layout: SceneLayout, num_views: int, image_size: tuple[int, int], config: SceneConfig, trajectory: str | None = None
) -> CameraSet:
    """Draw ``num_views`` cameras for ``layout`` from its seed (independent of the layout's draws).

    ``trajectory`` forces a trajectory kind; by default it is drawn by ``config.trajectory_weights``.
    """
    rng = np.random.default_rng([layout.seed, 1])
    names = [n for n in TRAJECTORIES if config.trajectory_weights.get(n, 0) > 0]
    weights = np.array([config.trajectory_weights[n] for n in names])
    drawn = names[rng.choice(len(names), p=weights / weights.sum())]
    trajectory = trajectory or drawn
    free = free_positions(layout, config.camera_clearance)
    eye, target = _TRAJECTORY_FUNCTIONS[trajectory](rng, layout, free, num_views, config)
    # A target straight above or below the eye has no defined heading: nudge it sideways.
    flat = np.linalg.norm((target - eye)[:, :2], axis=-1) < 1e-3
    target[flat, 0] += 0.05
    roll = rng.uniform(-math.radians(3), math.radians(3), num_views)
    base_fov = rng.uniform(*config.fov_range_deg)
    fov = base_fov + rng.uniform(-config.fov_jitter_deg, config.fov_jitter_deg, num_views)
    return CameraSet(intrinsics_from_fov(fov, image_size), look_at(eye, target, roll), trajectory)
