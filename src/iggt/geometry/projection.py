"""Rigid transforms, unprojection of depth maps and projection of points (OpenCV pinhole).

Pixel (u, v) is the centre of column u, row v: a depth map's pixel (u, v) unprojects the ray
through image coordinates (u, v) (no half-pixel offset), matching VGGT's unprojection.
"""

import torch


def to_homogeneous_matrix(transform: torch.Tensor) -> torch.Tensor:
    """(..., 3, 4) -> (..., 4, 4) by appending the row [0, 0, 0, 1]."""
    bottom = torch.zeros(transform.shape[:-2] + (1, 4), dtype=transform.dtype, device=transform.device)
    bottom[..., 0, 3] = 1
    return torch.cat([transform[..., :3, :4], bottom], -2)


def inverse_se3(transform: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of rigid transforms (..., 3, 4) or (..., 4, 4); returns the same shape."""
    rotation_t = transform[..., :3, :3].transpose(-1, -2)
    translation = -(rotation_t @ transform[..., :3, 3:4])
    inverse = torch.cat([rotation_t, translation], -1)
    return to_homogeneous_matrix(inverse) if transform.shape[-2] == 4 else inverse


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H, W, 2) pixel coordinates (u, v) = (column, row)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack([u, v], -1)


def depth_to_camera_points(depth: torch.Tensor, intrinsic: torch.Tensor) -> torch.Tensor:
    """(..., H, W) z-depth and (..., 3, 3) intrinsics -> (..., H, W, 3) points in the camera frame."""
    height, width = depth.shape[-2:]
    uv = pixel_grid(height, width, depth.device, depth.dtype)
    fx, fy = intrinsic[..., 0, 0, None, None], intrinsic[..., 1, 1, None, None]
    cx, cy = intrinsic[..., 0, 2, None, None], intrinsic[..., 1, 2, None, None]
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth], -1)


def depth_to_world_points(depth: torch.Tensor, intrinsic: torch.Tensor, extrinsic: torch.Tensor) -> torch.Tensor:
    """(..., H, W) depth, (..., 3, 3) intrinsics, (..., 3, 4) camera-from-world -> (..., H, W, 3) world points."""
    cam = depth_to_camera_points(depth, intrinsic)
    world_from_cam = inverse_se3(extrinsic[..., :3, :4])
    rotation = world_from_cam[..., None, None, :3, :3]
    translation = world_from_cam[..., None, None, :3, 3]
    return (rotation @ cam[..., None])[..., 0] + translation


def project_points(
    points: torch.Tensor, intrinsic: torch.Tensor, extrinsic: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into cameras.

    Args:
        points: (..., N, 3) world points.
        intrinsic: (..., 3, 3).
        extrinsic: (..., 3, 4) camera-from-world.

    Returns:
        uv: (..., N, 2) pixel coordinates; depth: (..., N) z in the camera frame (<= 0 means behind).
    """
    cam = points @ extrinsic[..., :3, :3].transpose(-1, -2) + extrinsic[..., None, :3, 3]
    z = cam[..., 2]
    safe_z = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    pix = cam @ intrinsic.transpose(-1, -2)
    uv = pix[..., :2] / safe_z[..., None]
    return uv, z
