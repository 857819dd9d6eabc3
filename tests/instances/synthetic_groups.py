"""Small hand-built scenes with known instance groups (S = 3 views of 24 x 24)."""

import numpy as np

from iggt.structures import Predictions

VIEWS, HEIGHT, WIDTH, CHANNELS = 3, 24, 24, 8


def separated_unit_vectors(count: int, channels: int, min_distance: float, rng: np.random.Generator) -> np.ndarray:
    """(count, channels) random unit vectors at least ``min_distance`` apart (rejection sampling)."""
    chosen: list[np.ndarray] = []
    while len(chosen) < count:
        v = rng.normal(size=channels)
        v /= np.linalg.norm(v)
        if all(np.linalg.norm(v - c) >= min_distance for c in chosen):
            chosen.append(v)
    return np.array(chosen)


def group_map() -> np.ndarray:
    """(S, H, W) ground-truth groups 0..5; group 1 is in views 0 and 2 only, group 5 is 12 pixels."""
    groups = np.zeros((VIEWS, HEIGHT, WIDTH), dtype=np.int64)
    groups[0, :, :12] = 1
    groups[2, :, 12:] = 1
    groups[0, :12, 12:] = 2
    groups[1, :, :12] = 2
    groups[1, 12:, 12:] = 3
    groups[2, :12, :12] = 3
    groups[0, 12:, 12:] = 4
    groups[1, :12, 12:] = 4
    groups[2, 12:, :12] = 0
    groups[2, 20:23, 0:4] = 5
    return groups


def features_for(groups: np.ndarray, centres: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """(..., C) unit features: the group's centre plus Gaussian noise, renormalised."""
    features = centres[groups] + noise * rng.normal(size=groups.shape + (centres.shape[1],))
    return (features / np.linalg.norm(features, axis=-1, keepdims=True)).astype(np.float32)


def make_predictions(
    features: np.ndarray, world_points: np.ndarray | None = None, conf=None, images=None
) -> Predictions:
    """Predictions of identity-ish cameras around the given (S, H, W, C) features."""
    s, h, w, _ = features.shape
    rng = np.random.default_rng(1)
    intrinsic = np.tile(np.array([[20.0, 0, w / 2], [0, 20.0, h / 2], [0, 0, 1]], np.float32), (s, 1, 1))
    extrinsic = np.tile(np.eye(3, 4, dtype=np.float32), (s, 1, 1))
    extrinsic[:, 0, 3] = np.arange(s) * 0.1
    if world_points is None:
        world_points = rng.normal(size=(s, h, w, 3)).astype(np.float32)
    return Predictions(
        images=rng.random((s, h, w, 3)).astype(np.float32) if images is None else images,
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        depth=np.full((s, h, w), 2.0, np.float32),
        depth_conf=np.full((s, h, w), 2.0, np.float32),
        world_points=world_points,
        world_points_conf=np.full((s, h, w), 2.0, np.float32) if conf is None else conf,
        instance_feat=features,
        pose_enc=np.zeros((s, 9), np.float32),
    )
