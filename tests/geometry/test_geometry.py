"""Property tests of the geometry functions on random float64 input."""

import math

import pytest
import torch

from iggt.geometry import (
    cameras_to_pose_encoding,
    depth_to_camera_points,
    depth_to_world_points,
    inverse_se3,
    matrix_to_quaternion,
    pose_encoding_to_cameras,
    project_points,
    quaternion_to_matrix,
)


def random_rotations(n: int, generator: torch.Generator) -> torch.Tensor:
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    return quaternion_to_matrix(q / q.norm(dim=-1, keepdim=True))


def random_cameras(n: int, size: tuple[int, int], generator: torch.Generator):
    rot = random_rotations(n, generator)
    t = torch.randn(n, 3, 1, generator=generator, dtype=torch.float64)
    extrinsic = torch.cat([rot, t], -1)
    fov = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 1.5 + 0.4  # 23..109 degrees
    h, w = size
    intrinsic = torch.zeros(n, 3, 3, dtype=torch.float64)
    intrinsic[:, 1, 1] = (h / 2) / torch.tan(fov[:, 0] / 2)
    intrinsic[:, 0, 0] = (w / 2) / torch.tan(fov[:, 1] / 2)
    intrinsic[:, 0, 2], intrinsic[:, 1, 2], intrinsic[:, 2, 2] = w / 2, h / 2, 1
    return extrinsic, intrinsic


def test_rotation_matrices_are_orthonormal():
    rot = random_rotations(1000, torch.Generator().manual_seed(0))
    eye = torch.eye(3, dtype=torch.float64).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(1000, dtype=torch.float64))


def test_quaternion_matrix_round_trip_including_half_turns():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    q[:500, 3] = 0.0  # 180-degree rotations: the hard case for matrix -> quaternion
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, 3:4] < 0, -q, q)
    back = matrix_to_quaternion(quaternion_to_matrix(q))
    # q and -q are the same rotation; compare the rotations and the standardised form (w >= 0).
    torch.testing.assert_close(quaternion_to_matrix(back), quaternion_to_matrix(q))
    assert (back[:, 3] >= 0).all()
    torch.testing.assert_close(back[500:], q[500:])


def test_known_rotation_about_z():
    angle = math.pi / 3
    q = torch.tensor([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)], dtype=torch.float64)
    expected = torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(quaternion_to_matrix(q), expected)


@pytest.mark.parametrize("size", [(224, 224), (336, 504)])
def test_pose_encoding_round_trip(size):
    extrinsic, intrinsic = random_cameras(500, size, torch.Generator().manual_seed(2))
    enc = cameras_to_pose_encoding(extrinsic, intrinsic, size)
    assert enc.shape == (500, 9)
    ext2, int2 = pose_encoding_to_cameras(enc, size)
    torch.testing.assert_close(ext2, extrinsic)
    torch.testing.assert_close(int2, intrinsic)
    torch.testing.assert_close(cameras_to_pose_encoding(ext2, int2, size), enc)


def test_inverse_se3_composes_to_identity():
    extrinsic, _ = random_cameras(100, (8, 8), torch.Generator().manual_seed(3))
    inv = inverse_se3(extrinsic)
    composed = inv[:, :3, :3] @ extrinsic[:, :3, :3]
    torch.testing.assert_close(composed, torch.eye(3, dtype=torch.float64).expand(100, 3, 3))
    torch.testing.assert_close(
        inv[:, :3, :3] @ extrinsic[:, :3, 3:] + inv[:, :3, 3:], torch.zeros(100, 3, 1, dtype=torch.float64)
    )


def test_project_unproject_round_trip():
    g = torch.Generator().manual_seed(4)
    size = (12, 16)
    extrinsic, intrinsic = random_cameras(5, size, g)
    depth = torch.rand(5, *size, generator=g, dtype=torch.float64) * 5 + 0.5
    world = depth_to_world_points(depth, intrinsic, extrinsic)
    uv, z = project_points(world.reshape(5, -1, 3), intrinsic, extrinsic)
    v, u = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    expected_uv = torch.stack([u, v], -1).reshape(1, -1, 2).double().expand(5, -1, -1)
    torch.testing.assert_close(uv, expected_uv)
    torch.testing.assert_close(z, depth.reshape(5, -1))


def test_camera_points_depth_is_z():
    intrinsic = torch.tensor([[100.0, 0, 8], [0, 100.0, 6], [0, 0, 1]], dtype=torch.float64)
    depth = torch.full((12, 16), 2.0, dtype=torch.float64)
    pts = depth_to_camera_points(depth, intrinsic)
    torch.testing.assert_close(pts[..., 2], depth)
    torch.testing.assert_close(pts[6, 8], torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(pts[6, 9, 0], torch.tensor(0.02, dtype=torch.float64))


def test_zero_field_of_view_decodes_to_finite_intrinsics():
    encoding = torch.zeros(2, 9, dtype=torch.float64)
    encoding[:, 6] = 1.0  # identity rotation
    encoding[1, 7:] = 0.8
    _, intrinsic = pose_encoding_to_cameras(encoding, (32, 48))
    assert torch.isfinite(intrinsic).all()
    assert (intrinsic[0, :2, :2].diagonal() > 1e4).all()  # a near-zero field of view is a huge focal length
    torch.testing.assert_close(intrinsic[1, 1, 1], 16 / torch.tan(torch.tensor(0.4, dtype=torch.float64)))
