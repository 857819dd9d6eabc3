"""The 9-d camera encoding the camera head predicts ("absT_quaR_FoV", as VGGT and IGGT).

encoding = [t_x, t_y, t_z, q_x, q_y, q_z, q_w, fov_h, fov_w] where (R, t) is camera-from-world
(OpenCV), q the quaternion of R (scalar-last), and fov_h = 2 atan(H / (2 f_y)),
fov_w = 2 atan(W / (2 f_x)). The principal point is assumed at the image centre (W/2, H/2).
"""

import torch

from iggt.geometry.rotations import matrix_to_quaternion, quaternion_to_matrix

# An untrained camera head (ReLU on the field of view) can output 0, an infinite focal length;
# decoding clamps the field of view here so intrinsics stay finite.
MIN_FIELD_OF_VIEW = 1e-4


def cameras_to_pose_encoding(
    extrinsic: torch.Tensor, intrinsic: torch.Tensor, image_size: tuple[int, int]
) -> torch.Tensor:
    """(..., 3, 4) camera-from-world and (..., 3, 3) intrinsics for (H, W) images -> (..., 9)."""
    height, width = image_size
    quat = matrix_to_quaternion(extrinsic[..., :3, :3])
    fov_h = 2 * torch.atan((height / 2) / intrinsic[..., 1, 1])
    fov_w = 2 * torch.atan((width / 2) / intrinsic[..., 0, 0])
    return torch.cat([extrinsic[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], -1)


def pose_encoding_to_cameras(
    pose_encoding: torch.Tensor, image_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 9) -> ((..., 3, 4) camera-from-world, (..., 3, 3) intrinsics for (H, W) images)."""
    height, width = image_size
    rotation = quaternion_to_matrix(pose_encoding[..., 3:7])
    extrinsic = torch.cat([rotation, pose_encoding[..., :3, None]], -1)
    fov = pose_encoding[..., 7:9].clamp(min=MIN_FIELD_OF_VIEW)
    fy = (height / 2) / torch.tan(fov[..., 0] / 2)
    fx = (width / 2) / torch.tan(fov[..., 1] / 2)
    intrinsic = torch.zeros(pose_encoding.shape[:-1] + (3, 3), dtype=pose_encoding.dtype, device=pose_encoding.device)
    intrinsic[..., 0, 0] = fx
    intrinsic[..., 1, 1] = fy
    intrinsic[..., 0, 2] = width / 2
    intrinsic[..., 1, 2] = height / 2
    intrinsic[..., 2, 2] = 1.0
    return extrinsic, intrinsic
