"""A scene's ground truth brought onto the network's pixel grid, where every metric is computed.

The images go through the same preprocessing as in inference (:mod:`iggt.inference.preprocess`,
"crop" by default: width to ``img_size``, height centre-cropped to a patch multiple). Ground truth
follows each view's :class:`ResizeRecord` exactly: dense maps (depth, instance and class IDs) are
sampled with nearest neighbour at the original pixel under each network pixel centre, intrinsics
are mapped by the record's affine map, extrinsics are unchanged. Network pixels that show no
original pixel (padding) are invalid. Mapping the ground truth to the prediction (rather than the
prediction back) keeps every metric at one resolution and never interpolates an ID or a depth edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from iggt.geometry import depth_to_world_points
from iggt.inference.preprocess import ResizeRecord, preprocess_images
from iggt.io.video import evenly_spaced_indices


@dataclass
class GroundTruth:
    """Ground truth of S views at the network's H x W.

    Attributes:
        depth: (S, H, W) float64 z-depth, 0 where unknown.
        valid: (S, H, W) bool pixels with a finite depth > 0 seen in the original image.
        world_points: (S, H, W, 3) float64 points in the ground truth's world frame (0 where invalid).
        extrinsic: (S, 3, 4) float64 camera-from-world.
        intrinsic: (S, 3, 3) float64 in network pixels.
        instance_ids: (S, H, W) int64, 0 = unlabelled (also outside the original image).
        class_ids: (S, H, W) int64 or None, 0 = unlabelled.
    """

    depth: np.ndarray
    valid: np.ndarray
    world_points: np.ndarray
    extrinsic: np.ndarray
    intrinsic: np.ndarray
    instance_ids: np.ndarray
    class_ids: np.ndarray | None


def select_views(num_frames: int, views: int | None) -> np.ndarray:
    """Indices of at most ``views`` frames spread evenly over the sequence (all when None), sorted."""
    if views is None:
        return np.arange(num_frames)
    return evenly_spaced_indices(num_frames, max(views, 1))


def sample_nearest(dense: np.ndarray, record: ResizeRecord, fill: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """One view's (H0, W0, ...) map on the network grid by nearest neighbour.

    Returns:
        (H, W, ...) values with ``fill`` where the network pixel shows no original pixel, and
        (H, W) bool telling where it does.
    """
    height, width = record.network_size
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    source = record.nearest_original_pixel(np.stack([columns, rows], -1))
    inside = (source[..., 0] >= 0) & (source[..., 0] < record.original_size[1])
    inside &= (source[..., 1] >= 0) & (source[..., 1] < record.original_size[0])
    column = np.clip(source[..., 0], 0, record.original_size[1] - 1)
    row = np.clip(source[..., 1], 0, record.original_size[0] - 1)
    values = dense[row, column]
    mask = inside.reshape(inside.shape + (1,) * (values.ndim - 2))
    return np.where(mask, values, fill), inside


def prepare_views(
    scene, views: np.ndarray, img_size: int, patch_size: int, mode: str = "crop"
) -> tuple[torch.Tensor, GroundTruth]:
    """The network input and the matching ground truth for the selected views of a scene.

    Args:
        scene: an :class:`iggt.structures.scene.Scene` (images (S, H, W, 3) uint8, depth (S, H, W),
            intrinsic (S, 3, 3), extrinsic (S, 3, 4) camera-from-world, instance_ids (S, H, W),
            optional class_ids (S, H, W)).
        views: indices of the frames to use.
        img_size, patch_size: the model's input size and patch size.
        mode: preprocessing mode, "crop" or "pad".

    Returns:
        images: (S, 3, H, W) float32 in [0, 1]; the :class:`GroundTruth` on that grid.
    """
    images = [scene.images[i].astype(np.float32) / 255.0 for i in views]
    tensor, records = preprocess_images(images, img_size, patch_size, mode)
    depth, valid, instances, classes, intrinsics = [], [], [], [], []
    class_maps = getattr(scene, "class_ids", None)
    for index, record in zip(views, records, strict=True):
        view_depth, inside = sample_nearest(np.asarray(scene.depth[index], dtype=np.float64), record)
        view_depth = np.where(np.isfinite(view_depth), view_depth, 0.0)
        depth.append(view_depth)
        valid.append(inside & (view_depth > 0))
        instances.append(sample_nearest(np.asarray(scene.instance_ids[index], dtype=np.int64), record)[0])
        if class_maps is not None:
            classes.append(sample_nearest(np.asarray(class_maps[index], dtype=np.int64), record)[0])
        intrinsics.append(record.intrinsic_to_network(scene.intrinsic[index]))
    extrinsic = np.asarray(scene.extrinsic, dtype=np.float64)[views]
    intrinsic = np.stack(intrinsics)
    depth_array = np.stack(depth)
    world = depth_to_world_points(
        torch.from_numpy(depth_array), torch.from_numpy(intrinsic), torch.from_numpy(extrinsic)
    ).numpy()
    valid_array = np.stack(valid)
    truth = GroundTruth(
        depth=depth_array,
        valid=valid_array,
        world_points=np.where(valid_array[..., None], world, 0.0),
        extrinsic=extrinsic,
        intrinsic=intrinsic,
        instance_ids=np.stack(instances),
        class_ids=np.stack(classes) if classes else None,
    )
    return tensor, truth
