"""A multi-view scene with exact ground truth: what the scene format stores and training reads.

Conventions (docs/architecture.md): OpenCV cameras, extrinsics camera-from-world (3, 4), depth is
z-depth in metres with 0 = invalid (sky, holes), instance ID 0 = no instance and the same ID is the
same object in every view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from iggt.errors import SceneFormatError


@dataclass(frozen=True)
class InstanceInfo:
    """One row of a scene's instance table.

    Attributes:
        class_name: semantic class, e.g. "chair" or "wall".
        kind: how the instance was made, e.g. the generator recipe "round_table" or "scan".
    """

    class_name: str
    kind: str


@dataclass
class Scene:
    """S views of one static scene.

    Attributes:
        images: (S, H, W, 3) uint8 RGB.
        depth: (S, H, W) float32 z-depth in metres, 0 where invalid.
        intrinsic: (S, 3, 3) float32 pinhole intrinsics in pixels.
        extrinsic: (S, 3, 4) float32 camera-from-world, OpenCV.
        instance_ids: (S, H, W) int32, 0 = none; the same ID is the same object in every view.
        class_ids: (S, H, W) int32 semantic class per pixel (0 = none), or None when unknown.
        frame_names: S unique names, used as file stems on disk (e.g. "000000").
        instances: instance ID (> 0) -> InstanceInfo for every ID that occurs in ``instance_ids``.
        class_names: class ID (> 0) -> name for every ID that occurs in ``class_ids``.
        metadata: free-form JSON-serialisable facts (generator, seed, source dataset).
    """

    images: np.ndarray
    depth: np.ndarray
    intrinsic: np.ndarray
    extrinsic: np.ndarray
    instance_ids: np.ndarray
    class_ids: np.ndarray | None
    frame_names: list[str]
    instances: dict[int, InstanceInfo]
    class_names: dict[int, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise SceneFormatError(f"Scene.images must be (S, H, W, 3), got {self.images.shape}")
        num_views, height, width, _ = self.images.shape
        expected = {
            "images": ((num_views, height, width, 3), np.uint8),
            "depth": ((num_views, height, width), np.float32),
            "intrinsic": ((num_views, 3, 3), np.float32),
            "extrinsic": ((num_views, 3, 4), np.float32),
            "instance_ids": ((num_views, height, width), np.int32),
        }
        if self.class_ids is not None:
            expected["class_ids"] = ((num_views, height, width), np.int32)
        for name, (shape, dtype) in expected.items():
            array = getattr(self, name)
            if array.shape != shape or array.dtype != dtype:
                raise SceneFormatError(
                    f"Scene.{name} must be {np.dtype(dtype).name} {shape}, got {array.dtype} {array.shape}"
                )
        self._check_values()
        self._check_frame_names()
        self._check_tables()

    def _check_values(self) -> None:
        for name in ("depth", "intrinsic", "extrinsic"):
            if not np.isfinite(getattr(self, name)).all():
                raise SceneFormatError(f"Scene.{name} has non-finite values; mark invalid depth with 0")
        if (self.depth < 0).any():
            raise SceneFormatError("Scene.depth has negative values; depth is z-depth >= 0 with 0 = invalid")

    def _check_frame_names(self) -> None:
        names = self.frame_names
        if len(names) != self.num_views or len(set(names)) != len(names):
            raise SceneFormatError(f"Scene.frame_names must be {self.num_views} unique names, got {names}")
        for name in names:
            if not name or "/" in name or "\\" in name or name.startswith("."):
                raise SceneFormatError(f"Scene frame name {name!r} is not a plain file stem")

    def _check_tables(self) -> None:
        present = {int(i) for i in np.unique(self.instance_ids) if i != 0}
        missing = sorted(present - set(self.instances))
        if missing or (self.instance_ids < 0).any():
            raise SceneFormatError(f"Scene.instance_ids has IDs {missing or 'below 0'} absent from Scene.instances")
        if self.class_ids is not None and self.class_names:
            present = {int(i) for i in np.unique(self.class_ids) if i != 0}
            missing = sorted(present - set(self.class_names))
            if missing:
                raise SceneFormatError(f"Scene.class_ids has IDs {missing} absent from Scene.class_names")

    @property
    def num_views(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every view."""
        return self.images.shape[1], self.images.shape[2]
