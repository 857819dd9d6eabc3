"""Normalisation: first camera frame, unit mean point distance, and invariance to the world frame."""

import math

import torch

from iggt.data.batch import build_training_batch, check_training_batch
from iggt.data.normalization import normalize_geometry
from iggt.geometry import inverse_se3, quaternion_to_matrix, to_homogeneous_matrix


def random_views(batch: int, views: int, height: int, width: int, generator: torch.Generator):
    depth = torch.rand(batch, views, height, width, generator=generator) * 4 + 1
    depth[:, :, :3, :5] = 0  # invalid pixels must not count
    quaternion = torch.randn(batch, views, 4, generator=generator)
    rotation = quaternion_to_matrix(quaternion / quaternion.norm(dim=-1, keepdim=True))
    translation = torch.randn(batch, views, 3, 1, generator=generator) * 3
    extrinsic = torch.cat([rotation, translation], -1)
    intrinsic = torch.tensor([[30.0, 0, width / 2], [0, 30.0, height / 2], [0, 0, 1]]).expand(batch, views, 3, 3)
    return depth, intrinsic, extrinsic


def test_first_camera_is_identity_and_mean_distance_is_one():
    depth, intrinsic, extrinsic = random_views(2, 3, 12, 16, torch.Generator().manual_seed(0))
    result = normalize_geometry(depth, intrinsic, extrinsic)
    assert torch.equal(result.extrinsic[:, 0], torch.eye(3, 4).expand(2, 3, 4))
    distance = result.world_points.norm(dim=-1)
    for b in range(2):
        assert math.isclose(distance[b][result.valid_mask[b]].mean().item(), 1.0, rel_tol=1e-5)
    assert (result.world_points[~result.valid_mask] == 0).all() and (result.depth[~result.valid_mask] == 0).all()
    assert torch.allclose(result.depth * result.scale[:, None, None, None], depth * result.valid_mask, rtol=1e-5)


def test_result_does_not_depend_on_the_world_frame_or_units():
    """Moving, rotating and rescaling the whole world (cameras and depth) changes nothing."""
    generator = torch.Generator().manual_seed(1)
    depth, intrinsic, extrinsic = random_views(1, 3, 10, 12, generator)
    quaternion = torch.randn(4, generator=generator)
    world_change = torch.cat(
        [quaternion_to_matrix(quaternion / quaternion.norm()), torch.randn(3, 1, generator=generator)], -1
    )
    # New world coordinates x' = M x: camera-from-new-world = E M^-1; lengths scaled by 2.5.
    moved = (to_homogeneous_matrix(extrinsic) @ inverse_se3(to_homogeneous_matrix(world_change)))[..., :3, :]
    scaled = moved.clone()
    scaled[..., 3] *= 2.5
    first = normalize_geometry(depth, intrinsic, extrinsic)
    second = normalize_geometry(depth * 2.5, intrinsic, scaled)
    assert torch.allclose(first.extrinsic, second.extrinsic, atol=1e-5)
    assert torch.allclose(first.world_points, second.world_points, atol=1e-5)
    assert torch.allclose(first.depth, second.depth, atol=1e-5)
    assert torch.allclose(second.scale, first.scale * 2.5, rtol=1e-5)


def test_scene_without_valid_depth_keeps_unit_scale():
    depth, intrinsic, extrinsic = random_views(1, 2, 6, 8, torch.Generator().manual_seed(2))
    result = normalize_geometry(torch.zeros_like(depth), intrinsic, extrinsic)
    assert result.scale.item() == 1.0 and not result.valid_mask.any()


def test_built_batch_meets_the_contract():
    depth, intrinsic, extrinsic = random_views(2, 3, 6, 8, torch.Generator().manual_seed(3))
    images = torch.randint(0, 256, (2, 3, 6, 8, 3), dtype=torch.uint8)
    ids = torch.randint(0, 5, (2, 3, 6, 8), dtype=torch.int32)
    batch = build_training_batch(images, depth, intrinsic, extrinsic, ids, None)
    check_training_batch(batch)
    assert torch.equal(batch["images"][0, 1, :, 2, 3], images[0, 1, 2, 3].float() / 255)
    assert (batch["class_ids"] == 0).all() and torch.equal(batch["instance_ids"], ids.long())
