"""The training batch contract (docs/architecture.md): assembling a batch and checking one.

Both training sources (the GPU synthetic stream and scene folders on disk) build their batches
here, so the contract and its normalisation live in one place.
"""

from __future__ import annotations

import torch

from iggt.data.normalization import normalize_geometry
from iggt.errors import InputError

TRAINING_BATCH_DTYPES = {
    "images": torch.float32,
    "depth": torch.float32,
    "extrinsic": torch.float32,
    "intrinsic": torch.float32,
    "world_points": torch.float32,
    "valid_mask": torch.bool,
    "instance_ids": torch.int64,
    "class_ids": torch.int64,
}
"""Every key of a training batch and its dtype."""


def build_training_batch(
    images: torch.Tensor,
    depth: torch.Tensor,
    intrinsic: torch.Tensor,
    extrinsic: torch.Tensor,
    instance_ids: torch.Tensor,
    class_ids: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """Normalise and pack B scenes of S views into the training batch contract.

    Args:
        images: (B, S, H, W, 3) uint8 or float in [0, 1], channels-last.
        depth: (B, S, H, W) metric z-depth, 0 where invalid.
        intrinsic: (B, S, 3, 3) pixels.
        extrinsic: (B, S, 3, 4) camera-from-world, OpenCV, any world frame.
        instance_ids: (B, S, H, W) integers, 0 = none.
        class_ids: (B, S, H, W) integers, 0 = none, or None (all 0).
    """
    geometry = normalize_geometry(depth, intrinsic, extrinsic)
    if images.dtype == torch.uint8:
        images = images.float() / 255
    return {
        "images": images.float().permute(0, 1, 4, 2, 3).contiguous(),
        "depth": geometry.depth,
        "extrinsic": geometry.extrinsic,
        "intrinsic": intrinsic.float(),
        "world_points": geometry.world_points,
        "valid_mask": geometry.valid_mask,
        "instance_ids": instance_ids.long(),
        "class_ids": torch.zeros_like(instance_ids, dtype=torch.int64) if class_ids is None else class_ids.long(),
    }


def check_training_batch(batch: dict[str, torch.Tensor]) -> None:
    """Raise InputError unless ``batch`` has exactly the contract's keys, dtypes and shapes."""
    if set(batch) != set(TRAINING_BATCH_DTYPES):
        raise InputError(f"training batch keys must be {sorted(TRAINING_BATCH_DTYPES)}, got {sorted(batch)}")
    b, s, _, h, w = batch["images"].shape
    shapes = {
        "images": (b, s, 3, h, w),
        "depth": (b, s, h, w),
        "extrinsic": (b, s, 3, 4),
        "intrinsic": (b, s, 3, 3),
        "world_points": (b, s, h, w, 3),
        "valid_mask": (b, s, h, w),
        "instance_ids": (b, s, h, w),
        "class_ids": (b, s, h, w),
    }
    for key, dtype in TRAINING_BATCH_DTYPES.items():
        got = (batch[key].dtype, tuple(batch[key].shape))
        if got != (dtype, shapes[key]):
            raise InputError(f"training batch {key!r} must be {dtype} {shapes[key]}, got {got[0]} {got[1]}")
