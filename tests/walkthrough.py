"""An engine walk-through for the long-capture tests, and exact window predictions made from it.

Seed 5's walk, 24 views at 24 x 32, in windows of 6 sharing 2 (frames 0-5, 4-9, 8-13, 12-17,
16-21, 18-23): object 10 is in view in frames 1-3, out of view in frames 4-15 (windows 1 and 2
never see it) and back in frames 16-23, so only the final pass over the capture can give it its
first ID back.
"""

from functools import lru_cache

import numpy as np
import torch

from iggt.geometry import depth_to_world_points
from iggt.geometry.similarity import Similarity
from iggt.structures.predictions import Predictions
from iggt.structures.scene import Scene
from iggt.synth.config import SceneConfig
from iggt.synth.generate import render_scenes

SEED, VIEWS, SIZE = 5, 24, (24, 32)
WINDOW, OVERLAP = 6, 2
RETURNING_OBJECT = 10
FEATURE_CHANNELS = 16


@lru_cache(maxsize=1)
def walkthrough() -> tuple[Scene, np.ndarray]:
    """The scene and its (S, H, W, 3) float64 ground-truth world points."""
    scene = next(render_scenes([SEED], VIEWS, SIZE, SceneConfig(trajectory_weights={"walk": 1.0})))
    points = depth_to_world_points(
        torch.from_numpy(scene.depth).double(),
        torch.from_numpy(scene.intrinsic).double(),
        torch.from_numpy(scene.extrinsic).double(),
    )
    return scene, points.numpy()


def object_features(instance_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """(..., C) float32 features: one random unit vector per ground-truth ID (0 included)."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(int(instance_ids.max()) + 1, FEATURE_CHANNELS))
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    return table[instance_ids].astype(np.float32)


def window_frame(scene: Scene, frames: range, scale: float) -> Similarity:
    """Ground-truth world -> the frame a network gives a window: its first camera, at ``scale``."""
    first = scene.extrinsic[frames.start].astype(np.float64)
    return Similarity(scale, first[:, :3], scale * first[:, 3])


def exact_predictions(frames: range, change: Similarity) -> Predictions:
    """The ground truth of ``frames`` expressed in another frame and scale, x' = s R x + T, as a
    perfect network would predict it; confidence 1 where the depth is valid, features by object."""
    scene, points = walkthrough()
    views = list(frames)
    valid = scene.depth[views] > 0
    height, width = SIZE
    return Predictions(
        images=scene.images[views].astype(np.float32) / 255,
        extrinsic=change.apply_to_extrinsic(scene.extrinsic[views]).astype(np.float32),
        intrinsic=scene.intrinsic[views].astype(np.float32),
        depth=(change.scale * scene.depth[views]).astype(np.float32),
        depth_conf=valid.astype(np.float32),
        world_points=change.apply(points[views]).astype(np.float32),
        world_points_conf=valid.astype(np.float32),
        instance_feat=object_features(scene.instance_ids[views]),
        pose_enc=np.zeros((len(views), 9), np.float32),
    )
