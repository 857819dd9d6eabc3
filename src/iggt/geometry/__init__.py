"""Pure geometry functions; the one place camera conventions are converted.

Convention: OpenCV cameras (x right, y down, z forward), extrinsics camera-from-world (3, 4),
quaternions scalar-last (x, y, z, w) with w >= 0.
"""

from iggt.geometry.pose_encoding import cameras_to_pose_encoding, pose_encoding_to_cameras
from iggt.geometry.projection import (
    depth_to_camera_points,
    depth_to_world_points,
    inverse_se3,
    project_points,
    to_homogeneous_matrix,
)
from iggt.geometry.rotations import matrix_to_quaternion, quaternion_to_matrix

__all__ = [
    "cameras_to_pose_encoding",
    "depth_to_camera_points",
    "depth_to_world_points",
    "inverse_se3",
    "matrix_to_quaternion",
    "pose_encoding_to_cameras",
    "project_points",
    "quaternion_to_matrix",
    "to_homogeneous_matrix",
]
