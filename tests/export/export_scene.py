"""A small consistent scene (S = 3 views of 20 x 24, real rotations) with hand-made instances."""

import numpy as np
from scipy.spatial.transform import Rotation

from iggt.instances import lift_instances
from iggt.structures import Instances, Predictions

VIEWS, HEIGHT, WIDTH, CHANNELS = 3, 20, 24, 6


def world_points_from_depth(depth, intrinsic, extrinsic):
    """(S, H, W) depth -> (S, H, W, 3) world points, pixel (u, v) centred at integer (u, v)."""
    v, u = np.meshgrid(np.arange(depth.shape[1]), np.arange(depth.shape[2]), indexing="ij")
    pixels = np.stack([u, v, np.ones_like(u)], -1).astype(np.float64)
    rays = np.einsum("sij,hwj->shwi", np.linalg.inv(intrinsic), pixels)
    camera = rays * depth[..., None]
    rotation, translation = extrinsic[:, :, :3], extrinsic[:, :, 3]
    return np.einsum("sji,shwj->shwi", rotation, camera - translation[:, None, None])


def make_scene(seed: int = 0) -> tuple[Predictions, Instances]:
    rng = np.random.default_rng(seed)
    turns = [Rotation.from_rotvec(rng.normal(scale=0.3, size=3)).as_matrix() for _ in range(VIEWS - 1)]
    rotations = np.stack([np.eye(3), *turns])  # the first camera is the world frame
    translations = np.concatenate([np.zeros((1, 3)), rng.normal(scale=0.5, size=(VIEWS - 1, 3))])
    extrinsic = np.concatenate([rotations, translations[:, :, None]], 2)
    intrinsic = np.zeros((VIEWS, 3, 3))
    intrinsic[:, 0, 0], intrinsic[:, 1, 1] = rng.uniform(18, 26, VIEWS), rng.uniform(18, 26, VIEWS)
    intrinsic[:, 0, 2], intrinsic[:, 1, 2], intrinsic[:, 2, 2] = WIDTH / 2 - 0.3, HEIGHT / 2 + 0.2, 1
    depth = rng.uniform(2, 4, (VIEWS, HEIGHT, WIDTH))
    points = world_points_from_depth(depth, intrinsic, extrinsic)
    conf = rng.uniform(1, 3, (VIEWS, HEIGHT, WIDTH))
    points[0, 0, :3] = np.nan  # a few broken points are never exported
    labels = np.zeros((VIEWS, HEIGHT, WIDTH), dtype=np.int32)
    labels[:, :, 6:12], labels[:, 10:, 12:] = 1, 2
    labels[1:, :10, 14:20] = 3
    features = rng.normal(size=(VIEWS, HEIGHT, WIDTH, CHANNELS))
    features /= np.linalg.norm(features, axis=-1, keepdims=True)
    f32 = np.float32
    predictions = Predictions(
        images=rng.random((VIEWS, HEIGHT, WIDTH, 3)).astype(f32),
        extrinsic=extrinsic.astype(f32),
        intrinsic=intrinsic.astype(f32),
        depth=depth.astype(f32),
        depth_conf=conf.astype(f32),
        world_points=points.astype(f32),
        world_points_conf=conf.astype(f32),
        instance_feat=features.astype(f32),
        pose_enc=np.zeros((VIEWS, 9), f32),
    )
    return predictions, lift_instances(labels, points, conf, features.astype(f32))


def kept_pixels(predictions: Predictions, quantile: float) -> np.ndarray:
    """Flat indices of the finite pixels at or above the confidence quantile (what exporters keep)."""
    conf = predictions.world_points_conf.reshape(-1)
    finite = np.isfinite(predictions.world_points.reshape(-1, 3)).all(1)
    return np.flatnonzero(finite & (conf >= np.quantile(conf[finite], quantile)))
