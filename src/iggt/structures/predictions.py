"""Per-scene network outputs as NumPy arrays, the hand-off from inference to everything after it.

Conventions (stated once for the whole project):
- Cameras are OpenCV: x right, y down, z forward. ``extrinsic`` maps world to camera
  (camera-from-world, ``x_cam = R @ x_world + t``); the world frame is the first camera's frame.
- Pixel (u, v) is the centre of column u, row v; ``intrinsic`` maps camera to pixel coordinates.
- Arrays are channels-last: (S, H, W, C) for S views of H x W pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from iggt.errors import InputError
from iggt.structures.npz_archive import save_npz


@dataclass
class Predictions:
    """Everything the network says about one scene of S views at H x W.

    Attributes:
        images: (S, H, W, 3) float32 RGB in [0, 1], the images the network saw.
        extrinsic: (S, 3, 4) float32 camera-from-world, OpenCV.
        intrinsic: (S, 3, 3) float32 pinhole intrinsics in pixels of the H x W images.
        depth: (S, H, W) float32 z-depth along the optical axis (scene units).
        depth_conf: (S, H, W) float32 confidence of ``depth`` (>= 1 for the official activation).
        world_points: (S, H, W, 3) float32 points in the world (first camera) frame.
        world_points_conf: (S, H, W) float32 confidence of ``world_points``.
        instance_feat: (S, H, W, C) float32 unit-norm instance features.
        pose_enc: (S, 9) float32 pose encoding [t(3), quaternion xyzw(4), fov_h, fov_w].
    """

    images: np.ndarray
    extrinsic: np.ndarray
    intrinsic: np.ndarray
    depth: np.ndarray
    depth_conf: np.ndarray
    world_points: np.ndarray
    world_points_conf: np.ndarray
    instance_feat: np.ndarray
    pose_enc: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise InputError(f"Predictions.images must be (S, H, W, 3), got {self.images.shape}")
        s, h, w, _ = self.images.shape
        expected = {
            "extrinsic": (s, 3, 4),
            "intrinsic": (s, 3, 3),
            "depth": (s, h, w),
            "depth_conf": (s, h, w),
            "world_points": (s, h, w, 3),
            "world_points_conf": (s, h, w),
            "pose_enc": (s, 9),
        }
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise InputError(f"Predictions.{name} must have shape {shape}, got {got}")
        if self.instance_feat.shape[:3] != (s, h, w) or self.instance_feat.ndim != 4:
            raise InputError(
                f"Predictions.instance_feat must be (S, H, W, C) with S, H, W = {(s, h, w)}, "
                f"got {self.instance_feat.shape}"
            )

    @property
    def num_views(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the network's images."""
        return self.images.shape[1], self.images.shape[2]

    @classmethod
    def from_model_output(cls, output: dict, batch_index: int = 0) -> Predictions:
        """Convert one scene of the model's batched torch output dict (see ``iggt.IGGT.forward``)."""

        def arr(key: str) -> np.ndarray:
            return output[key][batch_index].detach().float().cpu().numpy()

        return cls(
            images=np.ascontiguousarray(arr("images").transpose(0, 2, 3, 1)),
            extrinsic=arr("extrinsic"),
            intrinsic=arr("intrinsic"),
            depth=arr("depth")[..., 0],
            depth_conf=arr("depth_conf"),
            world_points=arr("world_points"),
            world_points_conf=arr("world_points_conf"),
            instance_feat=arr("instance_feat"),
            pose_enc=arr("pose_enc"),
        )

    def save(self, path: str | Path, threads: int | None = None, deflate_floats: bool = False) -> None:
        """Write all arrays to one ``.npz`` (keys are the attribute names): float arrays stored as
        they are unless ``deflate_floats`` (they deflate only to 88-93 %), the others deflated on
        ``threads`` threads (None: every CPU this process may use; the bytes do not depend on it;
        see :func:`iggt.structures.npz_archive.save_npz`)."""
        save_npz(path, {f.name: getattr(self, f.name) for f in fields(self)}, threads, deflate_floats)

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        try:
            with np.load(path) as data:
                return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read predictions from {path}: {exc}") from exc
