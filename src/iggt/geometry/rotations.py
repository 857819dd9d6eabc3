"""Rotation matrix <-> unit quaternion (scalar-last x, y, z, w), batched over leading dims."""

import torch


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternion (x, y, z, w), any non-zero norm -> (..., 3, 3) rotation matrix."""
    x, y, z, w = quaternion.unbind(-1)
    s = 2.0 / (quaternion * quaternion).sum(-1)
    rows = (
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(rows, -1).reshape(quaternion.shape[:-1] + (3, 3))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrix -> (..., 4) unit quaternion (x, y, z, w) with w >= 0.

    Each of the four standard formulas divides by one of 4w^2, 4x^2, 4y^2, 4z^2; the one with the
    largest denominator is taken so the result stays accurate near 180-degree rotations.
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    four_sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )  # 4w^2, 4x^2, 4y^2, 4z^2
    root = torch.sqrt(four_sq.clamp_min(0.0))
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s10, s20, s21 = m[..., 1, 0] + m[..., 0, 1], m[..., 2, 0] + m[..., 0, 2], m[..., 2, 1] + m[..., 1, 2]
    # Rows: candidate quaternions (x, y, z, w) scaled by 4w, 4x, 4y, 4z respectively.
    candidates = torch.stack(
        [
            torch.stack([d21, d02, d10, four_sq[..., 0]], -1),
            torch.stack([four_sq[..., 1], s10, s20, d21], -1),
            torch.stack([s10, four_sq[..., 2], s21, d02], -1),
            torch.stack([s20, s21, four_sq[..., 3], d10], -1),
        ],
        -2,
    )
    candidates = candidates / (2.0 * root.clamp_min(0.1)).unsqueeze(-1)
    best = root.argmax(-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[..., 3:4] < 0, -quat, quat)
